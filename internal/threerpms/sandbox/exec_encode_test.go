package sandbox

import (
	"encoding/json"
	"testing"
)

// TestRespObjectEncoding: answers keep their keys in selection order at
// every depth, lists included, and escape as encoding/json does.
func TestRespObjectEncoding(t *testing.T) {
	t.Parallel()
	o := respObject{
		{"z", "a<b & c"},
		{"a", respObject{{"y", 1}, {"b", nil}, {"list", []any{respObject{{"k", true}}, "é", 2.5}}}},
		{"m", map[string]any{"q": 1, "p": 2}},
	}
	got, err := json.Marshal(map[string]any{"data": o})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"data":{"z":"a\u003cb \u0026 c","a":{"y":1,"b":null,"list":[{"k":true},"é",2.5]},"m":{"p":2,"q":1}}}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
