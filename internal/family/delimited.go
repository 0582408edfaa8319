package family

import (
	"errors"
	"io"
)

// ContentType is the media type of a protobuf-delimited push body.
const ContentType = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"

// AppendDelimited appends f as one length-delimited
// io.prometheus.client.MetricFamily message (a varint length, then the
// message) and returns the extended buffer. TODO: implemented by the codec.
func AppendDelimited(b []byte, f *Family) []byte {
	panic("family.AppendDelimited: not implemented yet")
}

// Decoder reads length-delimited io.prometheus.client.MetricFamily messages.
type Decoder struct {
	r io.Reader
}

// NewDecoder returns a Decoder reading from r.
func NewDecoder(r io.Reader) *Decoder { return &Decoder{r: r} }

// Decode reads the next message into *f (overwriting it). It returns io.EOF
// at a clean end of input and another error for a truncated or malformed
// message. TODO: implemented by the codec.
func (d *Decoder) Decode(f *Family) error {
	return errors.New("family.Decoder: not implemented yet")
}
