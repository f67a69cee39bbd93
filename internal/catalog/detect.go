package catalog

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/stewardhq/steward/internal/policy"
)

// Kinds of sensitive data the detectors find; each becomes the tag
// PII{type: KIND} on a column (TagPII).
const (
	KindEmail      = "email"
	KindPhone      = "phone"
	KindIBAN       = "iban"
	KindCard       = "payment_card"
	KindBirthDate  = "date_of_birth"
	KindNationalID = "national_id"
	KindPersonName = "person_name"
	KindAddress    = "address"
)

// TagPII is the tag detection applies; its "type" attribute is the kind.
const TagPII = "PII"

// Detection is what a detector concluded about one column.
type Detection struct {
	Column     string  `json:"column"`
	Kind       string  `json:"kind"`
	Confidence float64 `json:"confidence"` // 0..1
	Reason     string  `json:"reason"`
}

// nameHints: column-name tokens that suggest a kind, with a confidence.
var nameHints = []struct {
	kind  string
	conf  float64
	names []string
}{
	{KindEmail, 0.8, []string{"email", "e_mail", "mail", "emailaddress"}},
	{KindPhone, 0.7, []string{"phone", "telephone", "mobile", "msisdn", "tel", "phonenumber"}},
	{KindIBAN, 0.8, []string{"iban"}},
	{KindCard, 0.7, []string{"pan", "card", "cardnumber", "cc", "creditcard", "card_number"}},
	{KindBirthDate, 0.8, []string{"dob", "birthdate", "date_of_birth", "birth_date", "dateofbirth", "birthday"}},
	{KindNationalID, 0.7, []string{"ssn", "nin", "national_id", "nationalid", "bsn", "rrn", "insee", "nationalnumber", "tax_id", "taxid", "passport"}},
	{KindPersonName, 0.6, []string{"first_name", "firstname", "last_name", "lastname", "surname", "full_name", "fullname", "given_name", "family_name", "customer_name"}},
	{KindAddress, 0.6, []string{"address", "street", "addr", "postcode", "zip", "zipcode", "postal_code", "city"}},
}

// DetectName guesses a kind from a column name alone.
func DetectName(column string) (Detection, bool) {
	n := strings.ToLower(column)
	if i := strings.LastIndexByte(n, '.'); i >= 0 {
		n = n[i+1:]
	}
	compact := strings.NewReplacer("_", "", "-", "", " ", "").Replace(n)
	toks := Tokenize(n)
	for _, h := range nameHints {
		for _, hn := range h.names {
			hc := strings.ReplaceAll(hn, "_", "")
			if n == hn || compact == hc {
				return Detection{Column: column, Kind: h.kind, Confidence: h.conf, Reason: fmt.Sprintf("column name %q", column)}, true
			}
		}
	}
	for _, h := range nameHints {
		for _, hn := range h.names {
			if strings.Contains(hn, "_") || len(hn) < 4 {
				continue
			}
			for _, t := range toks {
				if t == hn {
					return Detection{Column: column, Kind: h.kind, Confidence: h.conf - 0.1, Reason: fmt.Sprintf("column name %q contains %q", column, hn)}, true
				}
			}
		}
	}
	return Detection{}, false
}

var (
	reEmail  = regexp.MustCompile(`^[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(\.[A-Za-z0-9\-]{1,63})*\.[A-Za-z]{2,24}$`)
	rePhone  = regexp.MustCompile(`^(\+|\(|[0-9])[0-9 ()./\-]{6,18}[0-9]$`)
	reDate   = regexp.MustCompile(`^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}$|^\d{1,2}[-/.]\d{1,2}[-/.]\d{4}$`)
	reHouseN = regexp.MustCompile(`^\d{1,5}[a-zA-Z]?,?$`)
)

// streetWords are words (or, for the Germanic ones, word endings) naming
// streets.
var (
	streetWords    = map[string]bool{"street": true, "st": true, "avenue": true, "ave": true, "road": true, "rd": true, "lane": true, "boulevard": true, "blvd": true, "drive": true, "way": true, "place": true, "rue": true, "chaussée": true, "chemin": true, "via": true, "calle": true, "plein": true, "square": true}
	streetSuffixes = []string{"straat", "laan", "weg", "strasse", "straße", "gasse", "plein", "dreef", "steenweg"}
)

// IsEmail reports whether s looks like an e-mail address.
func IsEmail(s string) bool { return len(s) <= 254 && reEmail.MatchString(s) }

// IsPhone reports whether s looks like a phone number (8 to 15 digits,
// with the usual separators; international +prefix allowed).
func IsPhone(s string) bool {
	if !rePhone.MatchString(s) || reDate.MatchString(s) {
		return false
	}
	n := digits(s)
	return len(n) >= 8 && len(n) <= 15
}

// IsIBAN reports whether s is a valid IBAN (spaces allowed): country
// code, check digits, and the ISO 7064 mod-97 check.
func IsIBAN(s string) bool {
	s = strings.ToUpper(strings.ReplaceAll(s, " ", ""))
	if len(s) < 15 || len(s) > 34 {
		return false
	}
	for i, r := range s {
		switch {
		case i < 2 && (r < 'A' || r > 'Z'):
			return false
		case i >= 2 && i < 4 && (r < '0' || r > '9'):
			return false
		case !(r >= 'A' && r <= 'Z') && !(r >= '0' && r <= '9'):
			return false
		}
	}
	rearranged := s[4:] + s[:4]
	rem := 0
	for _, r := range rearranged {
		if r >= 'A' {
			v := int(r-'A') + 10
			rem = (rem*100 + v) % 97
		} else {
			rem = (rem*10 + int(r-'0')) % 97
		}
	}
	return rem == 1
}

// IsCardNumber reports whether s is a payment card number: 13 to 19
// digits (spaces or dashes allowed) passing the Luhn check, with a known
// issuer prefix (2-6).
func IsCardNumber(s string) bool {
	for _, r := range s {
		if !(r >= '0' && r <= '9') && r != ' ' && r != '-' {
			return false
		}
	}
	n := digits(s)
	if len(n) < 13 || len(n) > 19 || n[0] < '2' || n[0] > '6' {
		return false
	}
	return Luhn(n)
}

// Luhn reports whether the digit string passes the Luhn check.
func Luhn(n string) bool {
	if n == "" {
		return false
	}
	sum := 0
	double := false
	for i := len(n) - 1; i >= 0; i-- {
		c := n[i]
		if c < '0' || c > '9' {
			return false
		}
		d := int(c - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

var dateLayouts = []string{"2006-01-02", "02/01/2006", "01/02/2006", "02.01.2006", "2006/01/02", "2006-01-02T15:04:05Z07:00", "2006-01-02 15:04:05"}

// IsBirthDate reports whether s is a date that could be a living
// person's birth date (1900 up to 14 years before now).
func IsBirthDate(s string, now time.Time) bool {
	s = strings.TrimSpace(s)
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.Year() >= 1900 && t.Before(now.AddDate(-14, 0, 0))
		}
	}
	return false
}

// IsNationalID reports whether s is a national identifier in a format
// that carries a check: a Belgian national register number (11 digits,
// mod-97), a US SSN (AAA-GG-SSSS, valid area), a Dutch BSN (9 digits,
// 11-test).
func IsNationalID(s string) bool {
	n := digits(s)
	for _, r := range s {
		if !(r >= '0' && r <= '9') && !strings.ContainsRune(" .-", r) {
			return false
		}
	}
	switch len(n) {
	case 11: // Belgium: check = 97 - (first 9 digits mod 97); +2000000000 for births from 2000
		var base int64
		for _, c := range n[:9] {
			base = base*10 + int64(c-'0')
		}
		check := int64(n[9]-'0')*10 + int64(n[10]-'0')
		return check == 97-base%97 || check == 97-(2000000000+base)%97
	case 9:
		if strings.Count(s, "-") == 2 && len(s) == 11 && s[3] == '-' && s[6] == '-' { // US SSN
			area := n[:3]
			return area != "000" && area != "666" && area[0] != '9' && n[3:5] != "00" && n[5:] != "0000"
		}
		if strings.ContainsAny(s, " .-") {
			return false
		}
		sum := 0 // Dutch BSN 11-test
		for i := 0; i < 8; i++ {
			sum += int(n[i]-'0') * (9 - i)
		}
		sum -= int(n[8] - '0')
		return sum%11 == 0 && sum != 0
	}
	return false
}

// commonGivenNames are frequent given names across Europe and the US, for
// recognising person names in samples.
var commonGivenNames = map[string]bool{}

func init() {
	for _, n := range strings.Fields(`anna emma julia laura sarah marie sophie lisa lena eva maria elena sofia olivia
		mia charlotte amelia ella nina clara louise lucie camille chloe ines manon alice jane mary linda susan karen
		peter jan pieter thomas lucas noah liam louis arthur jules adam victor hugo paul jean pierre michel luc marc
		david daniel james john robert michael william richard joseph charles christopher matthew andrew mark
		bob wim koen tom bart dirk geert stefan hans karl max felix leon ben elias finn jonas lukas luca marco
		giovanni antonio jose juan carlos miguel pedro ahmed mohamed ali fatima sara yasmine omar`) {
		commonGivenNames[n] = true
	}
}

// IsPersonName reports whether s looks like "Given Family" with a common
// given name.
func IsPersonName(s string) bool {
	f := strings.Fields(s)
	if len(f) < 2 || len(f) > 4 || len(s) > 80 {
		return false
	}
	for i, w := range f {
		w = strings.TrimSuffix(w, ",")
		r := []rune(w)
		if len(r) == 0 {
			return false
		}
		if !unicode.IsUpper(r[0]) && (i == 0 || !nameParticles[w]) {
			return false
		}
		for _, c := range r {
			if !unicode.IsLetter(c) && c != '-' && c != '\'' && c != '.' {
				return false
			}
		}
	}
	return commonGivenNames[strings.ToLower(f[0])] || commonGivenNames[strings.ToLower(f[len(f)-1])]
}

var nameParticles = map[string]bool{"de": true, "van": true, "der": true, "den": true, "von": true, "la": true, "le": true, "du": true, "di": true, "da": true, "del": true, "ten": true, "ter": true}

// IsAddress reports whether s looks like a street address: a house number
// and a street word ("12 Main Street", "Rue de la Loi 16", "Kerkstraat 5").
func IsAddress(s string) bool {
	if len(s) > 200 {
		return false
	}
	f := strings.Fields(strings.ToLower(s))
	if len(f) < 2 || len(f) > 12 {
		return false
	}
	num, street := false, false
	for _, w := range f {
		w = strings.Trim(w, ",.")
		if reHouseN.MatchString(w) {
			num = true
		}
		if streetWords[w] {
			street = true
		}
		for _, suf := range streetSuffixes {
			if strings.HasSuffix(w, suf) {
				street = true
			}
		}
	}
	return num && street
}

func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// valueDetectors in order of specificity: a value is counted for the
// first kind it matches.
var valueDetectors = []struct {
	kind string
	fn   func(string, time.Time) bool
}{
	{KindEmail, func(s string, _ time.Time) bool { return IsEmail(s) }},
	{KindIBAN, func(s string, _ time.Time) bool { return IsIBAN(s) }},
	{KindCard, func(s string, _ time.Time) bool { return IsCardNumber(s) }},
	{KindNationalID, func(s string, _ time.Time) bool { return IsNationalID(s) }},
	{KindBirthDate, IsBirthDate},
	{KindPhone, func(s string, _ time.Time) bool { return IsPhone(s) }},
	{KindPersonName, func(s string, _ time.Time) bool { return IsPersonName(s) }},
	{KindAddress, func(s string, _ time.Time) bool { return IsAddress(s) }},
}

// MaxSample bounds the values DetectValues looks at.
const MaxSample = 1000

// DetectValues classifies a column by a sample of its values (non-null,
// as text): the kind matched by the largest share of values, if at least
// 60% of them (birth dates only with a name hint, since many dates are
// not birth dates). Confidence is the share, raised when the name agrees.
func DetectValues(column string, sample []string, now time.Time) (Detection, bool) {
	if len(sample) > MaxSample {
		sample = sample[:MaxSample]
	}
	counts := map[string]int{}
	n := 0
	for _, v := range sample {
		v = strings.TrimSpace(v)
		if v == "" || len(v) > 256 {
			continue
		}
		n++
		for _, d := range valueDetectors {
			if d.fn(v, now) {
				counts[d.kind]++
				break
			}
		}
	}
	if n == 0 {
		return Detection{}, false
	}
	best, bestN := "", 0
	for _, d := range valueDetectors {
		if counts[d.kind] > bestN {
			best, bestN = d.kind, counts[d.kind]
		}
	}
	share := float64(bestN) / float64(n)
	if best == "" || share < 0.6 {
		return Detection{}, false
	}
	nd, named := DetectName(column)
	if best == KindBirthDate && (!named || nd.Kind != KindBirthDate) {
		return Detection{}, false
	}
	// Key columns (tx_id, account_key) are long numbers too: digits alone
	// do not make them phone numbers unless the name says so.
	if best == KindPhone && (!named || nd.Kind != KindPhone) && isKeyName(column) {
		return Detection{}, false
	}
	conf := 0.5 + 0.45*share
	if named && nd.Kind == best {
		conf = min(0.99, conf+0.1)
	}
	return Detection{Column: column, Kind: best, Confidence: conf,
		Reason: fmt.Sprintf("%d of %d sampled values look like %s", bestN, n, strings.ReplaceAll(best, "_", " "))}, true
}

// isKeyName reports whether a column name marks an identifier or key.
func isKeyName(column string) bool {
	c := strings.ToLower(column)
	if c == "id" || c == "key" {
		return true
	}
	for _, suf := range []string{"_id", "_key", "_nr", "_no", "id"} {
		if strings.HasSuffix(c, suf) {
			return true
		}
	}
	return false
}

// Detect combines the name and the values of a column.
func Detect(column string, sample []string, now time.Time) (Detection, bool) {
	if d, ok := DetectValues(column, sample, now); ok {
		return d, true
	}
	return DetectName(column)
}

// Rule applies tags at once when a detection is confident enough: every
// column detected as Kind with at least MinConfidence gets Tag, and its
// dataset at least MinClassification.
type Rule struct {
	ID                string                `json:"id"`
	Kind              string                `json:"kind"`
	MinConfidence     float64               `json:"min_confidence"`
	Tag               Tag                   `json:"tag"`
	MinClassification policy.Classification `json:"min_classification"`
}

// DefaultRules: confident detections of direct identifiers tag the column
// PII{type} and make the dataset at least C3 (payment cards and national
// identifiers C4).
func DefaultRules() []Rule {
	mk := func(kind string, c policy.Classification) Rule {
		return Rule{ID: "pii-" + kind, Kind: kind, MinConfidence: 0.75, Tag: Tag{Name: TagPII, Attrs: map[string]string{"type": kind}}, MinClassification: c}
	}
	return []Rule{
		mk(KindEmail, policy.C3), mk(KindPhone, policy.C3), mk(KindIBAN, policy.C3),
		mk(KindCard, policy.C4), mk(KindNationalID, policy.C4), mk(KindBirthDate, policy.C3),
	}
}

// ApplyDetections records detections on d: where a rule matches, the tag
// is applied at once and the classification raised; otherwise a pending
// suggestion is added (unless one for that column and kind was already
// made, whatever its status, or the column already has the tag).
func ApplyDetections(d *Dataset, dets []Detection, rules []Rule) {
	for _, det := range dets {
		col := d.Column(det.Column)
		if col == nil {
			continue
		}
		applied := false
		for _, r := range rules {
			if r.Kind != det.Kind || det.Confidence < r.MinConfidence {
				continue
			}
			t := r.Tag
			t.Source = "rule:" + r.ID
			if !hasTagAttrs(col.Tags, t) {
				col.Tags = append(col.Tags, t)
			}
			if d.Level() < r.MinClassification {
				d.Classification = r.MinClassification.String()
			}
			applied = true
		}
		if applied {
			continue
		}
		tag := Tag{Name: TagPII, Attrs: map[string]string{"type": det.Kind}}
		if hasTagAttrs(col.Tags, tag) {
			continue
		}
		id := ID(det.Column, det.Kind)
		dup := false
		for _, s := range d.Suggestions {
			dup = dup || s.ID == id
		}
		if !dup {
			d.Suggestions = append(d.Suggestions, Suggestion{ID: id, Column: det.Column, Tag: tag, Confidence: det.Confidence, Reason: det.Reason, Status: SuggestionPending})
		}
	}
}

func hasTagAttrs(ts []Tag, t Tag) bool {
	for _, x := range ts {
		if x.Name == t.Name && x.Attrs["type"] == t.Attrs["type"] {
			return true
		}
	}
	return false
}
