package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/chzyer/readline"
)

// lineReader is where `steward sql` reads statements: a terminal with
// line editing and history, or any other input.
type lineReader interface {
	// readLine returns the next line; io.EOF at the end,
	// readline.ErrInterrupt when the user pressed ^C.
	readLine(prompt string) (string, error)
	// remember adds a finished statement to the history.
	remember(stmt string)
	Close() error
}

// scanReader reads lines from a pipe or file, without prompts.
type scanReader struct{ sc *bufio.Scanner }

func newScanReader(r io.Reader) *scanReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return &scanReader{sc: sc}
}

func (s *scanReader) readLine(string) (string, error) {
	if s.sc.Scan() {
		return s.sc.Text(), nil
	}
	if err := s.sc.Err(); err != nil {
		return "", err
	}
	return "", io.EOF
}

func (s *scanReader) remember(string) {}
func (s *scanReader) Close() error    { return nil }

// terminalReader is an interactive terminal with line editing and a
// history file (sql_history in the CLI's config directory, mode 0600).
type terminalReader struct {
	rl    *readline.Instance
	token string
}

func newTerminalReader(stdio IO, token string) (*terminalReader, error) {
	hist, err := historyFile(stdio.Getenv)
	if err != nil {
		fmt.Fprintln(stdio.Err, "steward: no history:", err)
	}
	cfg := &readline.Config{
		Prompt:                 "steward=> ",
		HistoryFile:            hist,
		DisableAutoSaveHistory: true,
		HistoryLimit:           1000,
		InterruptPrompt:        "^C",
		Stdout:                 stdio.Out,
		Stderr:                 stdio.Err,
	}
	if _, isFile := stdio.In.(*os.File); !isFile {
		cfg.Stdin = io.NopCloser(stdio.In) // tests; a terminal is read by readline itself
	}
	rl, err := readline.NewEx(cfg)
	if err != nil {
		return nil, err
	}
	return &terminalReader{rl: rl, token: token}, nil
}

// historyFile creates the history file, readable by its owner only, and
// returns its path.
func historyFile(getenv func(string) string) (string, error) {
	dir, err := configDir(getenv)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	p := filepath.Join(dir, "sql_history")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	f.Close()
	return p, os.Chmod(p, 0o600)
}

func (t *terminalReader) readLine(prompt string) (string, error) {
	t.rl.SetPrompt(prompt)
	return t.rl.Readline()
}

func (t *terminalReader) remember(stmt string) {
	if keepInHistory(stmt, t.token) {
		t.rl.SaveHistory(strings.Join(strings.Fields(stmt), " "))
	}
}

func (t *terminalReader) Close() error { return t.rl.Close() }

var jwtLike = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.`)

// keepInHistory says whether a statement may be written to the history
// file: never one holding the user's token or anything shaped like one.
func keepInHistory(stmt, token string) bool {
	if token != "" && strings.Contains(stmt, token) {
		return false
	}
	return !jwtLike.MatchString(stmt)
}

const sqlHelp = `Statements end with ';' and may span lines.
  \dt, \d    list the tables you may query (SHOW TABLES)
  \q         quit
  \?         this help
^C clears the statement being typed, or cancels the running query.
`

// sqlLoop reads statements ending in ';' and runs each. An error is
// reported and the loop goes on, as psql does; without a terminal the
// exit status says whether any statement failed.
func sqlLoop(ctx context.Context, stdio IO, lr lineReader, run func(context.Context, string) error, interactive bool) error {
	var stmt strings.Builder
	failed := false
	exec := func(s string) {
		lr.remember(s)
		qctx, stop := ctx, func() {}
		if interactive {
			qctx, stop = signal.NotifyContext(ctx, os.Interrupt)
		}
		err := run(qctx, s)
		stop()
		if err != nil {
			failed = true
			if interactive && qctx.Err() != nil && ctx.Err() == nil {
				fmt.Fprintln(stdio.Err, "canceled")
				return
			}
			fmt.Fprintln(stdio.Err, "ERROR:", errorText(err))
		}
	}
	if interactive {
		fmt.Fprintln(stdio.Out, `steward sql: governed SQL with your masks and row filters. \? for help, \q to quit.`)
	}
	for {
		prompt := "steward=> "
		if stmt.Len() > 0 {
			prompt = "steward-> "
		}
		line, err := lr.readLine(prompt)
		if errors.Is(err, readline.ErrInterrupt) {
			stmt.Reset()
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		t := strings.TrimSpace(line)
		if stmt.Len() == 0 {
			if t == "" || strings.HasPrefix(t, "--") {
				continue
			}
			if t == `\q` || t == "quit" || t == "exit" {
				break
			}
			if strings.HasPrefix(t, `\`) {
				switch f := strings.Fields(t); f[0] {
				case `\dt`, `\d`:
					exec("SHOW TABLES")
				case `\?`, `\h`, `help`:
					fmt.Fprint(stdio.Out, sqlHelp)
				default:
					fmt.Fprintf(stdio.Err, "invalid command %s; try \\? for help\n", f[0])
				}
				continue
			}
		}
		stmt.WriteString(line)
		stmt.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			exec(stmt.String())
			stmt.Reset()
		}
	}
	if strings.TrimSpace(stmt.String()) != "" {
		exec(stmt.String())
	}
	if failed && !interactive {
		return &exitError{code: 1, msg: "some statements failed"}
	}
	return nil
}
