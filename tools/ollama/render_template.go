// render_template.go MODELFILE_TEMPLATE.txt CONVERSATION.json [tag]
//
// Executes the TEMPLATE of an Ollama Modelfile with Go's text/template, the engine Ollama uses,
// given the data the way Ollama's template package hands it over for a chat request:
// .Messages (every message, system ones included, in order, tool calls with their arguments as
// a map), .Tools (the tools offered, nil when none), .System (the system messages' contents
// joined by a blank line) and, for a template without .Messages, .Prompt (the last user
// message); the "json" function is Ollama's (encoding/json, compact). With "tag", prints instead
// the tool-call tag Ollama would look for in the model's output: the first text inside the
// first {{ if }} whose condition names the field .ToolCalls, cut before "{" and trimmed ("{"
// when there is none). tests/test_export_ollama.py compares the output with Causette's rendering.
// Usage: go run tools/ollama/render_template.go template.txt conversation.json [tag]
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
	"text/template/parse"
)

type ToolCallFunction struct {
	Index     int            `json:"index"`
	Name      string         `json:"name"`
	Arguments map[string]any `json:"arguments"`
}

type ToolCall struct {
	ID       string           `json:"id,omitempty"`
	Function ToolCallFunction `json:"function"`
}

type Message struct {
	Role       string     `json:"role"`
	Content    string     `json:"content"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolName   string     `json:"name,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

type Parameters struct {
	Type       string         `json:"type"`
	Required   []string       `json:"required,omitempty"`
	Properties map[string]any `json:"properties"`
}

type ToolFunction struct {
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Parameters  Parameters `json:"parameters"`
}

type Tool struct {
	Type     string       `json:"type"`
	Function ToolFunction `json:"function"`
}

var funcs = template.FuncMap{
	"json": func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	},
}

func main() {
	if len(os.Args) != 3 && !(len(os.Args) == 4 && os.Args[3] == "tag") {
		fmt.Fprintln(os.Stderr, "usage: render_template TEMPLATE CONVERSATION.json [tag]")
		os.Exit(2)
	}
	text, err := os.ReadFile(os.Args[1])
	check(err)
	t, err := template.New("").Option("missingkey=zero").Funcs(funcs).Parse(string(text))
	check(err)
	if len(os.Args) == 4 {
		fmt.Print(toolTag(t.Tree.Root))
		return
	}
	raw, err := os.ReadFile(os.Args[2])
	check(err)
	var in struct {
		Messages []*Message `json:"messages"`
		Tools    []Tool     `json:"tools"`
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
		"Tools":    in.Tools,
		"System":   strings.Join(system, "\n\n"),
		"Prompt":   prompt,
		"Response": "",
	}
	check(t.Execute(os.Stdout, data))
}

// toolTag: the tag read in the first "if" on .ToolCalls (see the header).
func toolTag(root *parse.ListNode) string {
	node := findIf(root)
	if node == nil {
		return "{"
	}
	text := firstText(node.List)
	if text == nil {
		return "{"
	}
	tag, _, _ := strings.Cut(string(text.Text), "{")
	if tag = strings.TrimSpace(tag); tag == "" {
		return "{"
	}
	return tag
}

func namesToolCalls(pipe *parse.PipeNode) bool {
	for _, cmd := range pipe.Cmds {
		for _, arg := range cmd.Args {
			if field, ok := arg.(*parse.FieldNode); ok {
				for _, ident := range field.Ident {
					if ident == "ToolCalls" {
						return true
					}
				}
			}
		}
	}
	return false
}

func findIf(list *parse.ListNode) *parse.IfNode {
	if list == nil {
		return nil
	}
	for _, node := range list.Nodes {
		var branch *parse.BranchNode
		switch n := node.(type) {
		case *parse.IfNode:
			if namesToolCalls(n.Pipe) {
				return n
			}
			branch = &n.BranchNode
		case *parse.RangeNode:
			branch = &n.BranchNode
		case *parse.WithNode:
			branch = &n.BranchNode
		case *parse.ListNode:
			if found := findIf(n); found != nil {
				return found
			}
		}
		if branch != nil {
			if found := findIf(branch.List); found != nil {
				return found
			}
			if found := findIf(branch.ElseList); found != nil {
				return found
			}
		}
	}
	return nil
}

// firstText: the first text that is not blank, looking inside nested blocks; an action, or a
// block without such text, ends the search.
func firstText(list *parse.ListNode) *parse.TextNode {
	if list == nil {
		return nil
	}
	for _, node := range list.Nodes {
		var branch *parse.BranchNode
		switch n := node.(type) {
		case *parse.TextNode:
			if len(bytes.TrimSpace(n.Text)) > 0 {
				return n
			}
			continue
		case *parse.ActionNode:
			return nil
		case *parse.ListNode:
			if found := firstText(n); found != nil {
				return found
			}
			continue
		case *parse.IfNode:
			branch = &n.BranchNode
		case *parse.RangeNode:
			branch = &n.BranchNode
		case *parse.WithNode:
			branch = &n.BranchNode
		default:
			continue
		}
		if found := firstText(branch.List); found != nil {
			return found
		}
		return firstText(branch.ElseList)
	}
	return nil
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
