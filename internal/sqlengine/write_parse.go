package sqlengine

import (
	"strings"

	"github.com/stewardhq/steward"
)

// WriteKind says what a writing statement does.
type WriteKind int

const (
	// WriteCreate is CREATE TABLE name AS query.
	WriteCreate WriteKind = iota + 1
	// WriteInsert is INSERT INTO name [(columns)] query.
	WriteInsert
)

// WriteStatement is the head of a writing statement: the target and the
// query whose result is written. Query is checked and run like any query;
// the rest of the statement never reaches the engine (Steward builds the
// statement that writes).
type WriteStatement struct {
	Kind    WriteKind
	Target  []string // the target's name parts, unquoted
	Columns []string // INSERT's column list; nil when absent
	Query   string   // the query text, without a trailing ";"
}

// ParseWrite recognizes CREATE TABLE ... AS and INSERT INTO statements. It
// returns nil (and no error) for a statement that starts with neither
// keyword, which is then treated as a query. A statement that starts with
// CREATE or INSERT but is not one of the supported forms is a
// feature-not-supported error (0A000); a malformed name or column list is
// a syntax error (42601).
func ParseWrite(q string) (*WriteStatement, error) {
	lx := &lexer{s: q}
	first := lx.word()
	var ws WriteStatement
	switch {
	case strings.EqualFold(first, "create"):
		if !lx.keyword("table") {
			return nil, unsupportedWrite()
		}
		ws.Kind = WriteCreate
	case strings.EqualFold(first, "insert"):
		if !lx.keyword("into") {
			return nil, unsupportedWrite()
		}
		ws.Kind = WriteInsert
	default:
		return nil, nil
	}
	name, err := lx.name()
	if err != nil {
		return nil, err
	}
	ws.Target = name
	switch ws.Kind {
	case WriteCreate:
		if !lx.keyword("as") {
			return nil, unsupportedWrite()
		}
	case WriteInsert:
		lx.skip()
		if lx.peek() == '(' && !startsQuery(lx.s[lx.i+1:]) {
			lx.i++
			for {
				c, err := lx.ident()
				if err != nil {
					return nil, err
				}
				ws.Columns = append(ws.Columns, c)
				lx.skip()
				if lx.peek() == ',' {
					lx.i++
					continue
				}
				if lx.peek() == ')' {
					lx.i++
					break
				}
				return nil, Errorf(steward.EInvalid, StateSyntax, "syntax error in the column list of INSERT")
			}
		}
	}
	body := lx.s[lx.i:]
	if !startsQuery(body) {
		return nil, unsupportedWrite()
	}
	ws.Query = trimStatement(body)
	return &ws, nil
}

func unsupportedWrite() error {
	return Errorf(steward.EPermission, StateFeature, "only CREATE TABLE name AS SELECT ... and INSERT INTO name [(columns)] SELECT ... | VALUES ... are supported")
}

// startsQuery reports whether s (after blanks and comments) starts a
// query: SELECT, WITH, VALUES, FROM or a parenthesis.
func startsQuery(s string) bool {
	lx := &lexer{s: s}
	lx.skip()
	if lx.peek() == '(' {
		return true
	}
	w := strings.ToLower(lx.word())
	switch w {
	case "select", "with", "values", "from":
		return true
	}
	return false
}

// trimStatement removes blanks and comments at both ends and one ";" at the end of a
// statement, so that it can be nested as a subquery. It returns s
// unchanged when it cannot tell (an unterminated string or comment): the
// nested statement then fails to parse, which fails closed.
func trimStatement(s string) string {
	lx := &lexer{s: s}
	begin := -1 // start of the first significant token
	end := 0    // end of the last significant token
	semi := -1  // position of a ";" after it
	for {
		lx.skip()
		if lx.bad {
			return strings.TrimSpace(s)
		}
		if lx.i >= len(lx.s) {
			break
		}
		start := lx.i
		if begin < 0 {
			begin = start
		}
		if !lx.token() {
			return strings.TrimSpace(s)
		}
		if lx.s[start] == ';' && lx.i == start+1 {
			if semi < 0 {
				semi = start
			}
			continue
		}
		if semi >= 0 {
			// Something after a ";": leave it for the parser to refuse.
			return strings.TrimSpace(s)
		}
		end = lx.i
	}
	if begin < 0 || end <= begin {
		return ""
	}
	return s[begin:end]
}

// lexer reads the few tokens of a statement's head: words, quoted
// identifiers, strings and comments as PostgreSQL and DuckDB write them.
type lexer struct {
	s   string
	i   int
	bad bool // an unterminated comment was seen
}

func (l *lexer) peek() byte {
	if l.i < len(l.s) {
		return l.s[l.i]
	}
	return 0
}

// skip passes blanks and comments (-- to the end of the line, /* */
// nested as in PostgreSQL).
func (l *lexer) skip() {
	for l.i < len(l.s) {
		c := l.s[l.i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			l.i++
		case strings.HasPrefix(l.s[l.i:], "--"):
			if j := strings.IndexByte(l.s[l.i:], '\n'); j >= 0 {
				l.i += j + 1
			} else {
				l.i = len(l.s)
			}
		case strings.HasPrefix(l.s[l.i:], "/*"):
			depth := 0
			for l.i < len(l.s) {
				if strings.HasPrefix(l.s[l.i:], "/*") {
					depth++
					l.i += 2
				} else if strings.HasPrefix(l.s[l.i:], "*/") {
					depth--
					l.i += 2
					if depth == 0 {
						break
					}
				} else {
					l.i++
				}
			}
			if depth != 0 {
				l.bad = true // unterminated: nothing more to read
			}
		default:
			return
		}
	}
}

func isWordByte(c byte, first bool) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80 || !first && (c >= '0' && c <= '9' || c == '$')
}

// word reads an unquoted word ("" if there is none).
func (l *lexer) word() string {
	l.skip()
	if l.i >= len(l.s) || !isWordByte(l.s[l.i], true) {
		return ""
	}
	j := l.i
	for j < len(l.s) && isWordByte(l.s[j], j == l.i) {
		j++
	}
	w := l.s[l.i:j]
	l.i = j
	return w
}

// keyword reads the word kw (case-insensitive); it reports whether it was
// there and consumes it only then.
func (l *lexer) keyword(kw string) bool {
	save := l.i
	if strings.EqualFold(l.word(), kw) {
		return true
	}
	l.i = save
	return false
}

// ident reads an identifier: a word (folded to lower case, as PostgreSQL
// does) or a double-quoted identifier ("" escapes a quote).
func (l *lexer) ident() (string, error) {
	l.skip()
	if l.peek() == '"' {
		var b strings.Builder
		for j := l.i + 1; j < len(l.s); j++ {
			if l.s[j] == '"' {
				if j+1 < len(l.s) && l.s[j+1] == '"' {
					b.WriteByte('"')
					j++
					continue
				}
				l.i = j + 1
				if b.Len() == 0 {
					return "", Errorf(steward.EInvalid, StateSyntax, "zero-length delimited identifier")
				}
				return b.String(), nil
			}
			b.WriteByte(l.s[j])
		}
		return "", Errorf(steward.EInvalid, StateSyntax, "unterminated quoted identifier")
	}
	w := l.word()
	if w == "" {
		return "", Errorf(steward.EInvalid, StateSyntax, "syntax error: a name is expected")
	}
	return strings.ToLower(w), nil
}

// name reads a dotted name.
func (l *lexer) name() ([]string, error) {
	var parts []string
	for {
		p, err := l.ident()
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
		if l.peek() != '.' {
			return parts, nil
		}
		l.i++
		if len(parts) > 16 {
			return nil, Errorf(steward.EInvalid, StateSyntax, "name has too many parts")
		}
	}
}

// token passes one token of any kind: a string, a quoted identifier, a
// dollar-quoted string or a single other byte run. It returns false for
// an unterminated one.
func (l *lexer) token() bool {
	c := l.s[l.i]
	switch {
	case c == '\'' || c == '"':
		for j := l.i + 1; j < len(l.s); j++ {
			if l.s[j] == c {
				if j+1 < len(l.s) && l.s[j+1] == c {
					j++
					continue
				}
				l.i = j + 1
				return true
			}
		}
		return false
	case c == '$':
		// $tag$ ... $tag$ (tag may be empty); a lone $1 is a parameter.
		j := l.i + 1
		for j < len(l.s) && isWordByte(l.s[j], j == l.i+1) && l.s[j] != '$' {
			j++
		}
		if j < len(l.s) && l.s[j] == '$' {
			tag := l.s[l.i : j+1]
			k := strings.Index(l.s[j+1:], tag)
			if k < 0 {
				return false
			}
			l.i = j + 1 + k + len(tag)
			return true
		}
		l.i = j
		return true
	case isWordByte(c, true):
		l.word()
		return true
	}
	l.i++
	return true
}
