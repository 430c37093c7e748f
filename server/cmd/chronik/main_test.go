package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"version"}, 0, "chronik dev", ""},
		{nil, 2, "", "usage:"},
		{[]string{"bogus"}, 2, "", `unknown command "bogus"`},
		{[]string{"serve", "--node-id", "0"}, 2, "", "at least 1"},
		{[]string{"serve", "-h"}, 0, "", "--kafka-addr"},
		{[]string{"serve", "--log-segment-bytes", "1000"}, 2, "", "-log-segment-bytes: must be in [1048576"},
	} {
		var out, errOut bytes.Buffer
		if code := run(tc.args, &out, &errOut); code != tc.code {
			t.Errorf("%v: exit %d, want %d", tc.args, code, tc.code)
		}
		if !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errOut.String(), tc.stderr) {
			t.Errorf("%v: stdout %q stderr %q, want them to contain %q and %q", tc.args, out.String(), errOut.String(), tc.stdout, tc.stderr)
		}
	}
}

// TestServeHelpListsBrokerFlags: `chronik serve -h` lists every broker
// flag with its Kafka key.
func TestServeHelpListsBrokerFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"serve", "-h"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, f := range brokerFlags() {
		if !strings.Contains(errOut.String(), "-"+f.name+" ") && !strings.Contains(errOut.String(), "-"+f.name+"\n") {
			t.Errorf("-h does not list -%s:\n%s", f.name, errOut.String())
		}
		if !strings.Contains(errOut.String(), "[Kafka "+f.key+"]") {
			t.Errorf("-h does not name %s", f.key)
		}
	}
}
