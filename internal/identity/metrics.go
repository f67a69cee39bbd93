package identity

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts token verification results. A nil *Metrics counts nothing.
type Metrics struct {
	results *prometheus.CounterVec
}

// NewMetrics registers steward_identity_token_verifications_total{result}
// on reg. The result label is "ok" or the refusal reason (expired,
// bad_signature, unknown_key, audience, issuer, malformed, ...).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{results: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "steward",
		Subsystem: "identity",
		Name:      "token_verifications_total",
		Help:      "Bearer token verifications by result (ok or the reason for refusal).",
	}, []string{"result"})}
	if err := reg.Register(m.results); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Metrics) observe(result string) {
	if m == nil {
		return
	}
	m.results.WithLabelValues(result).Inc()
}
