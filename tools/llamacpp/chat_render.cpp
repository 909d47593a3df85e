// causette-chat-render MODEL.gguf REQUEST.json
//
// Prints, as one JSON object, how llama.cpp itself turns a conversation into a prompt with the
// chat template stored in MODEL.gguf, by both of its paths:
//   "jinja":  common_chat_templates_apply with use_jinja = true (llama-cli, llama-server default)
//   "legacy": the same with use_jinja = false, i.e. llama_chat_apply_template's built-in
//             templates, chosen by detecting the template (llama-cli --no-jinja, simple examples)
// and, when the request has "parse", how llama-server reads that text as the model's reply:
//   "parsed": {"content": ..., "tool_calls": [{"name": ..., "arguments": "<JSON text>"}]}
//             (common_chat_parse with the parser that the jinja path built for these tools)
// REQUEST.json: {"messages": [OpenAI chat messages], "add_generation_prompt": true,
//                "tools": [OpenAI tool objects] (optional), "parse": "<model output>" (optional)}
// Messages and tools are read by llama.cpp's own OpenAI readers, as llama-server does.
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

static json parse_reply(const common_chat_params & params, const std::string & text) {
    common_chat_parser_params parser(params);
    parser.parser.load(params.parser);
    common_chat_msg msg = common_chat_parse(text, false, parser);
    json calls = json::array();
    for (const auto & call : msg.tool_calls) {
        calls.push_back({{"name", call.name}, {"arguments", call.arguments}});
    }
    return {{"format", common_chat_format_name(params.format)}, {"content", msg.content}, {"tool_calls", calls}};
}

int main(int argc, char ** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.gguf REQUEST.json\n", argv[0]);
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
    common_chat_templates_inputs inputs;
    try {
        std::ifstream in(argv[2]);
        request = json::parse(in);
        // llama.cpp's readers take its own JSON type: hand them the text
        inputs.messages = common_chat_msgs_parse_oaicompat(common_json::parse(request.at("messages").dump()));
        if (request.contains("tools")) {
            inputs.tools = common_chat_tools_parse_oaicompat(common_json::parse(request.at("tools").dump()));
        }
    } catch (const std::exception & e) {
        fprintf(stderr, "error: %s: %s\n", argv[2], e.what());
        return 1;
    }
    inputs.add_generation_prompt = request.value("add_generation_prompt", true);
    inputs.parallel_tool_calls = true;

    auto templates = common_chat_templates_init(model, "");
    json out;
    out["template"] = common_chat_templates_source(templates.get());
    for (bool jinja : {true, false}) {
        const char * key = jinja ? "jinja" : "legacy";
        inputs.use_jinja = jinja;
        try {
            common_chat_params params = common_chat_templates_apply(templates.get(), inputs);
            out[key] = params.prompt;
            if (jinja && request.contains("parse")) {
                out["parsed"] = parse_reply(params, request.at("parse").get<std::string>());
            }
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
