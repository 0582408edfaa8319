package gateway

import (
	"io"
	"net/http"

	fam "github.com/prometheus-lambda/prometheus-lambda/internal/family"
	"github.com/prometheus-lambda/prometheus-lambda/internal/pushbody"
)

// The push body decoding lives in internal/pushbody, shared with the Lambda
// extension's local push endpoint (which must not link the gateway).

// ValidationError is a push rejected for its content; the HTTP API answers
// 400 with its message. The store is unchanged when a push fails with it.
type ValidationError = pushbody.ValidationError

// ErrUnsupportedMediaType is wrapped by DecodeBody for a Content-Type or
// Content-Encoding it cannot read (HTTP 415).
var ErrUnsupportedMediaType = pushbody.ErrUnsupportedMediaType

// DefaultMaxBodyBytes bounds a push body after decompression.
const DefaultMaxBodyBytes = pushbody.DefaultMaxBodyBytes

// DecodeBody reads a push body according to its Content-Type and
// Content-Encoding headers and returns its metric families sorted by name,
// without the families that have no samples. See pushbody.DecodeBody.
func DecodeBody(body io.Reader, h http.Header, maxBytes int64) ([]fam.Family, error) {
	return pushbody.DecodeBody(body, h, maxBytes)
}
