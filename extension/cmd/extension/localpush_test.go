package main

import "testing"

func TestLocalPushAddress(t *testing.T) {
	for _, c := range []struct {
		env, want string
		ok        bool
	}{
		{"", defaultLocalPushAddress, true},
		{"off", "", true},
		{"OFF", "", true},
		{"127.0.0.1:9191", "127.0.0.1:9191", true},
		{"localhost:9091", "localhost:9091", true},
		{"[::1]:9091", "[::1]:9091", true},
		{"0.0.0.0:9091", "", false},
		{"10.0.0.1:9091", "", false},
		{"9091", "", false},
	} {
		got, err := localPushAddress(func(k string) string {
			if k == "LOCAL_PUSH_ADDRESS" {
				return c.env
			}
			return ""
		})
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("LOCAL_PUSH_ADDRESS=%q: %q, %v; want %q, ok %v", c.env, got, err, c.want, c.ok)
		}
	}
}
