// render_template.go MODELFILE_TEMPLATE.txt CONVERSATION.json
//
// Executes the TEMPLATE of an Ollama Modelfile with Go's text/template, the engine Ollama uses,
// given the data the way Ollama's template package hands it over for a chat request:
// .Messages (every message, system ones included, in order), .System (the system messages'
// contents joined by a blank line) and, for a template without .Messages, .Prompt (the last
// user message). tests/test_export_ollama.py compares the output with Causette's rendering.
// Usage: go run tools/ollama/render_template.go template.txt conversation.json
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
)

type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: render_template TEMPLATE CONVERSATION.json")
		os.Exit(2)
	}
	text, err := os.ReadFile(os.Args[1])
	check(err)
	raw, err := os.ReadFile(os.Args[2])
	check(err)
	var in struct {
		Messages []Message `json:"messages"`
	}
	check(json.Unmarshal(raw, &in))
	var system []string
	prompt := ""
	for _, m := range in.Messages {
		if m.Role == "system" {
			system = append(system, m.Content)
		}
		if m.Role == "user" {
			prompt = m.Content
		}
	}
	data := map[string]any{
		"Messages": in.Messages,
		"System":   strings.Join(system, "\n\n"),
		"Prompt":   prompt,
		"Response": "",
	}
	t, err := template.New("").Parse(string(text))
	check(err)
	check(t.Execute(os.Stdout, data))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
