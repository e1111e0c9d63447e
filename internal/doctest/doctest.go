// Package doctest turns the console blocks of a Markdown page into a test.
//
// The tour (docs/tour.md) shows commands and what they print. A page like
// that rots silently: a flag is renamed, a column moves, and the reader is
// the first to notice. An end-to-end test walks the page instead: Parse
// reads every ```console block into commands and their shown output, the
// test runs each command with bash, and Match says whether the real output
// still looks like the page, after erasing what differs on every run (names
// with random suffixes, IPs, ages, timestamps).
package doctest

import (
	"fmt"
	"strings"
)

// Command is one "$ " line of a console block, with the lines bash reads
// along with it and the output the page shows after it.
type Command struct {
	// Line is the 1-based line of the page where the "$ " is, so a failure
	// points the reader at the step to fix.
	Line int
	// Text is what bash reads: the command without "$ ", followed by its
	// backslash continuation and heredoc lines, joined with "\n".
	Text string
	// Comment is a trailing shell comment of the command ("# like kubectl
	// rollout undo"), without the "#". It stays in Text too; bash ignores it.
	Comment string
	// Output holds the lines the page shows after the command, without
	// trailing empty lines.
	Output []string
}

// Parse returns every command of every ```console block of page, in order.
// Other fenced blocks are ignored. A console block that shows output before
// its first command, or ends inside a continuation or heredoc, is an error
// naming the page line.
func Parse(page []byte) ([]Command, error) {
	lines := strings.Split(strings.ReplaceAll(string(page), "\r\n", "\n"), "\n")
	var cmds []Command
	for i := 0; i < len(lines); i++ {
		f, ok := openingFence(lines[i])
		if !ok {
			continue
		}
		end := i + 1
		for end < len(lines) && !f.closedBy(lines[end]) {
			end++
		}
		if f.info == "console" {
			if end == len(lines) {
				return nil, fmt.Errorf("line %d: console block is never closed: add a %s line after it", i+1, f.marker)
			}
			body := make([]string, 0, end-i-1)
			for _, l := range lines[i+1 : end] {
				body = append(body, f.unindent(l))
			}
			block, err := parseBlock(body, i+2)
			if err != nil {
				return nil, err
			}
			cmds = append(cmds, block...)
		}
		i = end
	}
	return cmds, nil
}

// fence is the opening line of a fenced code block.
type fence struct {
	indent int    // spaces before the marker, stripped from the block's lines as Markdown does in lists
	marker string // the run of ` or ~ that opened the block
	info   string // the first word of the info string, e.g. "console"
}

func openingFence(line string) (fence, bool) {
	rest := strings.TrimLeft(line, " ")
	indent := len(line) - len(rest)
	for _, ch := range []string{"`", "~"} {
		n := len(rest) - len(strings.TrimLeft(rest, ch))
		if n < 3 {
			continue
		}
		info, _, _ := strings.Cut(strings.TrimSpace(rest[n:]), " ")
		return fence{indent: indent, marker: rest[:n], info: info}, true
	}
	return fence{}, false
}

// closedBy reports whether line closes the block: the same marker character,
// at least as long, and nothing else.
func (f fence) closedBy(line string) bool {
	rest := strings.TrimSpace(line)
	return strings.HasPrefix(rest, f.marker) && strings.Trim(rest, f.marker[:1]) == ""
}

func (f fence) unindent(line string) string {
	n := len(line) - len(strings.TrimLeft(line, " "))
	return line[min(n, f.indent):]
}

// parseBlock splits the lines of one console block, the first of which is
// page line first, into commands and their output.
func parseBlock(lines []string, first int) ([]Command, error) {
	var cmds []Command
	for i := 0; i < len(lines); {
		if strings.HasPrefix(lines[i], "$ ") {
			cmd, next, err := readCommand(lines, i, first)
			if err != nil {
				return nil, err
			}
			cmds = append(cmds, cmd)
			i = next
			continue
		}
		if len(cmds) == 0 {
			if strings.TrimSpace(lines[i]) != "" {
				return nil, fmt.Errorf("line %d: console block shows output %q before any command: start the block with a \"$ \" line", first+i, lines[i])
			}
		} else {
			last := &cmds[len(cmds)-1]
			last.Output = append(last.Output, lines[i])
		}
		i++
	}
	for i := range cmds {
		cmds[i].Output = dropTrailingEmpty(cmds[i].Output)
	}
	return cmds, nil
}

// readCommand reads the command starting at lines[start] with its
// continuation and heredoc lines, and returns the index of the line after it.
func readCommand(lines []string, start, first int) (Command, int, error) {
	cmd := Command{Line: first + start}
	text := []string{strings.TrimPrefix(lines[start], "$ ")}
	var docs []heredoc
	i := start
	for {
		found, comment := scanShellLine(text[len(text)-1])
		docs = append(docs, found...)
		if cmd.Comment == "" {
			cmd.Comment = comment
		}
		if !strings.HasSuffix(text[len(text)-1], `\`) {
			break
		}
		i++
		if i == len(lines) {
			return Command{}, 0, fmt.Errorf("line %d: command ends with \\ but the console block ends: remove the \\ or add the next line", first+i-1)
		}
		text = append(text, lines[i])
	}
	i++
	// Bash reads heredoc bodies after the whole command line, in order.
	for _, d := range docs {
		for done := false; !done; i++ {
			if i == len(lines) {
				return Command{}, 0, fmt.Errorf("line %d: heredoc %q is not closed before the console block ends: add a line %q", cmd.Line, d.delim, d.delim)
			}
			text = append(text, lines[i])
			done = d.endsAt(lines[i])
		}
	}
	cmd.Text = strings.Join(text, "\n")
	return cmd, i, nil
}

// heredoc is a "<<WORD" redirection whose body follows the command line.
type heredoc struct {
	delim     string
	stripTabs bool // "<<-": the terminator may be indented with tabs
}

func (d heredoc) endsAt(line string) bool {
	if d.stripTabs {
		line = strings.TrimLeft(line, "\t")
	}
	return line == d.delim
}

// scanShellLine finds, outside quotes, the heredocs a line opens and its
// trailing comment. It knows just enough shell for the commands of a page.
func scanShellLine(line string) (docs []heredoc, comment string) {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else if c == '\\' && quote == '"' {
				i++
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '\\':
			i++
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return docs, strings.TrimSpace(line[i+1:])
		case strings.HasPrefix(line[i:], "<<<"):
			i += 2 // a here-string has no body
		case strings.HasPrefix(line[i:], "<<"):
			var d heredoc
			d, i = readHeredocWord(line, i+2)
			if d.delim != "" {
				docs = append(docs, d)
			}
			i--
		}
	}
	return docs, ""
}

// readHeredocWord reads the delimiter after "<<" at line[i:], unquoting it,
// and returns the index after it.
func readHeredocWord(line string, i int) (heredoc, int) {
	var d heredoc
	if i < len(line) && line[i] == '-' {
		d.stripTabs = true
		i++
	}
	for i < len(line) && line[i] == ' ' {
		i++
	}
	var word strings.Builder
	for i < len(line) && !strings.ContainsRune(" \t;|&<>()", rune(line[i])) {
		if q := line[i]; q == '\'' || q == '"' {
			end := strings.IndexByte(line[i+1:], q)
			if end < 0 {
				end = len(line) - i - 1
			}
			word.WriteString(line[i+1 : i+1+end])
			i += end + 2
			continue
		}
		word.WriteByte(line[i])
		i++
	}
	d.delim = word.String()
	return d, min(i, len(line))
}

func dropTrailingEmpty(lines []string) []string {
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}
