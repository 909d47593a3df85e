// causette-chat-render MODEL.gguf MESSAGES.json
//
// Prints, as one JSON object, how llama.cpp itself turns a conversation into a prompt with the
// chat template stored in MODEL.gguf, by both of its paths:
//   "jinja":  common_chat_templates_apply with use_jinja = true (llama-cli, llama-server default)
//   "legacy": the same with use_jinja = false, i.e. llama_chat_apply_template's built-in
//             templates, chosen by detecting the template (llama-cli --no-jinja, simple examples)
// MESSAGES.json: {"messages": [{"role": ..., "content": ...}, ...], "add_generation_prompt": true}
// A path that fails gives {"error": "..."} in place of its text.
#include "chat.h"
#include "llama.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <exception>
#include <fstream>
#include <string>

using json = nlohmann::ordered_json;

static void quiet_log(ggml_log_level, const char *, void *) {}

int main(int argc, char ** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.gguf MESSAGES.json\n", argv[0]);
        return 2;
    }
    llama_log_set(quiet_log, nullptr);
    llama_backend_init();
    llama_model_params mparams = llama_model_default_params();
    mparams.vocab_only = true;  // the template and the vocabulary are all we need
    llama_model * model = llama_model_load_from_file(argv[1], mparams);
    if (model == nullptr) {
        fprintf(stderr, "error: llama.cpp could not load %s\n", argv[1]);
        return 1;
    }
    json request;
    try {
        std::ifstream in(argv[2]);
        request = json::parse(in);
    } catch (const std::exception & e) {
        fprintf(stderr, "error: %s: %s\n", argv[2], e.what());
        return 1;
    }
    common_chat_templates_inputs inputs;
    for (const auto & m : request.at("messages")) {
        common_chat_msg msg;
        msg.role = m.at("role").get<std::string>();
        msg.content = m.at("content").get<std::string>();
        inputs.messages.push_back(msg);
    }
    inputs.add_generation_prompt = request.value("add_generation_prompt", true);

    auto templates = common_chat_templates_init(model, "");
    json out;
    out["template"] = common_chat_templates_source(templates.get());
    for (bool jinja : {true, false}) {
        const char * key = jinja ? "jinja" : "legacy";
        inputs.use_jinja = jinja;
        try {
            out[key] = common_chat_templates_apply(templates.get(), inputs).prompt;
        } catch (const std::exception & e) {
            out[key] = json{{"error", e.what()}};
        }
    }
    out["add_bos"] = llama_vocab_get_add_bos(llama_model_get_vocab(model));
    printf("%s\n", out.dump().c_str());
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
