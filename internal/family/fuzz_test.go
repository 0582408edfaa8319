package family

import (
	"bufio"
	"bytes"
	"io"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protodelim"
)

// FuzzDecode checks that no input panics the Decoder, that whatever decodes
// re-encodes to bytes that decode to the same families (and re-encode to
// the same bytes), that the protobuf runtime reads those bytes the same
// way, and that where the runtime also reads the input, it reads the same
// values (the Decoder is stricter: it may refuse what the runtime accepts,
// never disagree with it).
func FuzzDecode(f *testing.F) {
	fams := sampleFamilies()
	var all []byte
	for i := range fams {
		if len(fams[i].Metrics) > 20 {
			continue // large seeds make minimising new inputs crawl
		}
		b := AppendDelimited(nil, &fams[i])
		f.Add(b)
		all = append(all, b...)
	}
	f.Add(all)
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(bytes.NewReader(in))
		d.MaxMessageBytes = 1 << 20
		var first *Family
		for i := 0; i < 16; i++ {
			var fam Family
			if err := d.Decode(&fam); err != nil {
				if err == io.EOF && len(in) > 0 && i == 0 {
					t.Fatalf("io.EOF for %d bytes of input", len(in))
				}
				break
			}
			if first == nil {
				first = &fam
			}
			enc := AppendDelimited(nil, &fam)
			var again Family
			d2 := NewDecoder(bytes.NewReader(enc))
			if err := d2.Decode(&again); err != nil {
				t.Fatalf("re-encoded family does not decode: %v\n%+v", err, fam)
			}
			if diff := diffFamily(&again, &fam); diff != "" {
				t.Fatalf("re-encoded family decodes differently: %s", diff)
			}
			if err := d2.Decode(&again); err != io.EOF {
				t.Fatalf("re-encoding left trailing data: %v", err)
			}
			if enc2 := AppendDelimited(nil, &again); !bytes.Equal(enc2, enc) {
				t.Fatalf("re-encoding not stable:\n%x\n%x", enc, enc2)
			}
			var mf dto.MetricFamily
			if err := protodelim.UnmarshalFrom(bufio.NewReader(bytes.NewReader(enc)), &mf); err != nil {
				t.Fatalf("protobuf cannot read the re-encoding: %v", err)
			}
			if viaDTO := fromDTO(&mf); diffFamily(&viaDTO, &fam) != "" {
				t.Fatalf("protobuf reads the re-encoding differently: %s", diffFamily(&viaDTO, &fam))
			}
		}
		if first == nil {
			return
		}
		var mf dto.MetricFamily
		if err := (protodelim.UnmarshalOptions{MaxSize: 1 << 20}).UnmarshalFrom(bufio.NewReader(bytes.NewReader(in)), &mf); err == nil {
			if viaDTO := fromDTO(&mf); diffFamily(&viaDTO, first) != "" {
				t.Fatalf("protobuf reads the input differently: %s", diffFamily(&viaDTO, first))
			}
		}
	})
}
