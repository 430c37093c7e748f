package sim

import (
	"cmp"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The timeline picture of a run: one self-contained SVG file beside the
// trace (seed-N<suffix>.svg), drawn from the trace's events alone, the
// first thing to open when a seed fails. Time runs left to right (virtual
// seconds). From the top:
//
//   - one lane per node: grey where it is down (crashed, stopped,
//     fail-stopped, until it started again) and a band per fault that
//     touches it (crash, clean restart, pause, partition, one-way cut,
//     flaky link, disk faults, failpoints), coloured by kind and named on
//     hover;
//   - one lane per partition of the workload: its leader as a coloured
//     segment per (leader, epoch) as the leader sampler saw it, and the
//     producers' acknowledged offsets as dots rising with the offset;
//   - the phases (fault phase, heal) as dashed lines and every checker
//     finding (VIOLATION, LIVENESS, the finding passed in) as a red line
//     with its text.

var (
	reNodeEvent = regexp.MustCompile(`^b(\d+) (started|crashed|fail-stop|stopped cleanly|clock offset)`)
	reFaultKind = regexp.MustCompile(`^t\+\S+ lane\d+ (crash|clean restart|pause|partition|one-way cut|flaky|slow disk|read bit flips|fsync errors|disk full|failpoint)\b(.*)$`)
	reFaultHold = regexp.MustCompile(`(?:for|down=)(\S+)\s*$`)
	reBroker    = regexp.MustCompile(`\bb(\d+)\b`)
	reLeader    = regexp.MustCompile(`^(\S+/\d+) leader b(-?\d+) epoch (-?\d+)`)
	reAck       = regexp.MustCompile(`^\S+ (\S+/\d+) base=(\d+) n=(\d+)`)
)

var faultColours = map[string]string{
	"crash": "#d62728", "clean restart": "#ff7f0e", "pause": "#9467bd", "partition": "#8c564b",
	"one-way cut": "#e377c2", "flaky": "#bcbd22", "slow disk": "#17becf", "read bit flips": "#7f7f7f",
	"fsync errors": "#1f77b4", "disk full": "#2ca02c", "failpoint": "#aec7e8",
}

var nodeColours = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

func nodeColour(id int) string {
	if id < 1 {
		return "#cccccc"
	}
	return nodeColours[(id-1)%len(nodeColours)]
}

// timeline is what the picture shows, read from a trace.
type timeline struct {
	end      time.Duration
	nodes    []int
	down     map[int][][2]time.Duration
	faults   []tlFault
	parts    []string
	leaders  map[string][]tlLeader
	acks     map[string][][2]float64 // (seconds, offset)
	ackMax   map[string]float64
	marks    []tlMark // phases and findings
	findings []tlMark
}

type tlFault struct {
	kind, text string
	from, to   time.Duration
	nodes      []int
}

type tlLeader struct {
	at            time.Duration
	leader, epoch int
}

type tlMark struct {
	at   time.Duration
	text string
}

func readTimeline(evs []event) *timeline {
	tl := &timeline{down: map[int][][2]time.Duration{}, leaders: map[string][]tlLeader{}, acks: map[string][][2]float64{}, ackMax: map[string]float64{}}
	downSince := map[int]time.Duration{}
	seen := map[int]bool{}
	for _, e := range evs {
		tl.end = max(tl.end, e.at)
		switch e.kind {
		case evNode:
			m := reNodeEvent.FindStringSubmatch(e.text)
			if m == nil {
				continue
			}
			id, _ := strconv.Atoi(m[1])
			if !seen[id] {
				seen[id] = true
				tl.nodes = append(tl.nodes, id)
			}
			switch m[2] {
			case "started":
				if from, ok := downSince[id]; ok {
					tl.down[id] = append(tl.down[id], [2]time.Duration{from, e.at})
					delete(downSince, id)
				}
			case "crashed", "fail-stop", "stopped cleanly":
				if _, ok := downSince[id]; !ok {
					downSince[id] = e.at
				}
			}
		case evFault:
			m := reFaultKind.FindStringSubmatch(e.text)
			if m == nil {
				continue
			}
			f := tlFault{kind: m[1], text: e.text, from: e.at, to: e.at}
			if h := reFaultHold.FindStringSubmatch(e.text); h != nil {
				if d, err := time.ParseDuration(h[1]); err == nil {
					f.to = e.at + d
				}
			}
			for _, b := range reBroker.FindAllStringSubmatch(m[2], -1) {
				id, _ := strconv.Atoi(b[1])
				f.nodes = append(f.nodes, id)
			}
			tl.faults = append(tl.faults, f)
		case evLeader:
			m := reLeader.FindStringSubmatch(e.text)
			if m == nil {
				continue
			}
			l, _ := strconv.Atoi(m[2])
			ep, _ := strconv.Atoi(m[3])
			if _, ok := tl.leaders[m[1]]; !ok && !strings.HasPrefix(m[1], "adm") {
				tl.parts = append(tl.parts, m[1])
			}
			ls := tl.leaders[m[1]]
			if len(ls) == 0 || ls[len(ls)-1].leader != l || ls[len(ls)-1].epoch != ep {
				tl.leaders[m[1]] = append(ls, tlLeader{e.at, l, ep})
			}
		case evAck:
			m := reAck.FindStringSubmatch(e.text)
			if m == nil {
				continue
			}
			base, _ := strconv.ParseFloat(m[2], 64)
			n, _ := strconv.ParseFloat(m[3], 64)
			tl.acks[m[1]] = append(tl.acks[m[1]], [2]float64{e.at.Seconds(), base + n - 1})
			tl.ackMax[m[1]] = max(tl.ackMax[m[1]], base+n-1)
			if _, ok := tl.leaders[m[1]]; !ok {
				tl.leaders[m[1]] = nil
				tl.parts = append(tl.parts, m[1])
			}
		case evPhase:
			if strings.HasPrefix(e.text, "fault phase") || e.text == "heal" || strings.HasPrefix(e.text, "setup done") {
				tl.marks = append(tl.marks, tlMark{e.at, e.text})
			}
		case evCheck:
			if strings.Contains(e.text, "VIOLATION") || strings.Contains(e.text, "LIVENESS") {
				tl.findings = append(tl.findings, tlMark{e.at, e.text})
			}
		}
	}
	for id, from := range downSince {
		tl.down[id] = append(tl.down[id], [2]time.Duration{from, tl.end})
	}
	slices.Sort(tl.nodes)
	slices.SortFunc(tl.parts, func(a, b string) int { return cmp.Compare(a, b) })
	return tl
}

// Picture geometry, in SVG units.
const (
	tlWidth     = 1400
	tlLeft      = 90
	tlLaneH     = 26
	tlPartH     = 46
	tlTop       = 40
	tlFindingsH = 16
)

// writeTimeline draws tr beside its trace file (seed-N<suffix>.svg);
// finding, if not empty, is marked at the trace's end. Returns the path.
func writeTimeline(tr *trace, seed int64, suffix, finding string) (string, error) {
	evs := tr.canonical()
	tl := readTimeline(evs)
	if finding != "" {
		tl.findings = append(tl.findings, tlMark{tl.end, finding})
	}
	if err := os.MkdirAll("traces", 0o755); err != nil {
		return "", err
	}
	p := filepath.Join("traces", fmt.Sprintf("seed-%d%s.svg", seed, suffix))
	if err := os.WriteFile(p, []byte(tl.svg(seed)), 0o644); err != nil {
		return "", err
	}
	return filepath.Abs(p)
}

func (tl *timeline) svg(seed int64) string {
	end := max(tl.end, time.Second)
	x := func(d time.Duration) float64 { return tlLeft + float64(d)/float64(end)*(tlWidth-tlLeft-20) }
	height := tlTop + len(tl.nodes)*tlLaneH + 10 + len(tl.parts)*tlPartH + 30 + len(tl.findings)*tlFindingsH + 20
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="monospace" font-size="11">`+"\n", tlWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="8" y="16" font-size="13">seed %d: %.3fs virtual; lanes: nodes (grey: down; bands: faults), partitions (leader per epoch, dots: acked offsets); red: checker findings</text>`+"\n", seed, end.Seconds())
	// Axis: a tick per second (or per 5 s beyond 60 s), doubled until
	// there are at most 100: a stamp far out (wall time by mistake) must
	// not make the picture unbounded.
	step := time.Second
	if end > time.Minute {
		step = 5 * time.Second
	}
	for end/step > 100 {
		step *= 2
	}
	axisY := tlTop - 8
	for t := time.Duration(0); t <= end; t += step {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/><text x="%.1f" y="%d" fill="#999" font-size="9">%gs</text>`+"\n",
			x(t), axisY, x(t), height-10, x(t)+1, axisY, t.Seconds())
	}
	lane := map[int]int{}
	for i, id := range tl.nodes {
		y := tlTop + i*tlLaneH
		lane[id] = y
		fmt.Fprintf(&b, `<text x="8" y="%d" fill="%s">node b%d</text><rect x="%d" y="%d" width="%d" height="%d" fill="#f7f7f7"/>`+"\n",
			y+16, nodeColour(id), id, tlLeft, y+2, tlWidth-tlLeft-20, tlLaneH-4)
		for _, d := range tl.down[id] {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#bbb"><title>b%d down %.3fs..%.3fs</title></rect>`+"\n",
				x(d[0]), y+2, max(1, x(d[1])-x(d[0])), tlLaneH-4, id, d[0].Seconds(), d[1].Seconds())
		}
	}
	for _, f := range tl.faults {
		c := faultColours[f.kind]
		nodes := f.nodes
		if len(nodes) == 0 {
			nodes = tl.nodes // a fault of no one node (failpoints): every lane
		}
		for k, id := range nodes {
			y, ok := lane[id]
			if !ok {
				continue
			}
			// Bands of one fault on several lanes sit at the lane's
			// bottom, thinner, so a node's own crash stays visible.
			top, h := y+4, tlLaneH-8
			if len(nodes) > 1 {
				top, h = y+tlLaneH-10+2*min(k, 1), 5
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" fill-opacity="0.75"><title>%.3fs..%.3fs %s</title></rect>`+"\n",
				x(f.from), top, max(2, x(f.to)-x(f.from)), h, c, f.from.Seconds(), f.to.Seconds(), html.EscapeString(f.text))
		}
	}
	py := tlTop + len(tl.nodes)*tlLaneH + 10
	for i, p := range tl.parts {
		y := py + i*tlPartH
		fmt.Fprintf(&b, `<text x="8" y="%d">%s</text><text x="8" y="%d" fill="#999" font-size="9">acked ..%g</text><rect x="%d" y="%d" width="%d" height="%d" fill="#fafafa"/>`+"\n",
			y+14, html.EscapeString(p), y+26, tl.ackMax[p], tlLeft, y+2, tlWidth-tlLeft-20, tlPartH-4)
		ls := tl.leaders[p]
		for k, l := range ls {
			to := end
			if k+1 < len(ls) {
				to = ls[k+1].at
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="8" fill="%s"><title>%s leader b%d epoch %d from %.3fs</title></rect>`,
				x(l.at), y+2, max(1, x(to)-x(l.at)), nodeColour(l.leader), html.EscapeString(p), l.leader, l.epoch, l.at.Seconds())
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black"/>`+"\n", x(l.at), y+1, x(l.at), y+11)
		}
		top := max(1, tl.ackMax[p])
		var pts strings.Builder
		for _, a := range tl.acks[p] {
			fmt.Fprintf(&pts, "M%.1f %.1fh1.5", x(time.Duration(a[0]*float64(time.Second))), float64(y+tlPartH-4)-a[1]/top*float64(tlPartH-18))
		}
		if pts.Len() > 0 {
			fmt.Fprintf(&b, `<path d="%s" stroke="#2ca02c" stroke-width="2"/>`+"\n", pts.String())
		}
	}
	for _, m := range tl.marks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#555" stroke-dasharray="4 3"/><text x="%.1f" y="%d" fill="#555" font-size="9">%s</text>`+"\n",
			x(m.at), tlTop, x(m.at), height-30, x(m.at)+2, height-22, html.EscapeString(m.text))
	}
	fy := height - 12 - len(tl.findings)*tlFindingsH
	for i, f := range tl.findings {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="red" stroke-width="2"/><text x="8" y="%d" fill="red">%.3fs %s</text>`+"\n",
			x(f.at), tlTop, x(f.at), fy+i*tlFindingsH, fy+i*tlFindingsH+12, f.at.Seconds(), html.EscapeString(truncate(f.text, 180)))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// TestTimeline draws a small made-up trace: every lane kind appears.
func TestTimeline(t *testing.T) {
	evs := []event{
		{0, evNode, "b1 clock offset=0s drift=0ppm"}, {0, evNode, "b2 clock offset=0s drift=0ppm"},
		{time.Second, evPhase, "fault phase for 5s"},
		{2 * time.Second, evFault, "t+00001.000000s lane0 crash b2 mode=torn-prefix down=500ms"},
		{2 * time.Second, evNode, "b2 crashed (torn-prefix)"},
		{2500 * time.Millisecond, evNode, "b2 started"},
		{3 * time.Second, evFault, "t+00002.000000s lane0 partition b1 <-> b2 for 1s"},
		{time.Second, evLeader, "t0/0 leader b1 epoch 2"}, {3 * time.Second, evLeader, "t0/0 leader b2 epoch 3"},
		{1500 * time.Millisecond, evAck, "P0 t0/0 base=0 n=2 P0.0..P0.1"},
		{4 * time.Second, evCheck, "VIOLATION t0/0: lost acknowledged record"},
	}
	svg := readTimeline(evs).svg(7)
	for _, want := range []string{"node b2", "b2 down 2.000s..2.500s", "crash b2", "partition b1 &lt;-&gt; b2", "leader b2 epoch 3", "VIOLATION", "<path d=\"M"} {
		if !strings.Contains(svg, want) {
			t.Errorf("picture lacks %q", want)
		}
	}
}

// TestTimelineFarStamp: an event stamped far out (the watchdog once
// stamped its finding with wall time, decades past the bubble's epoch)
// still gives a picture of bounded size; drawing it used to build a
// gigabyte axis, and the over-budget process never ended.
func TestTimelineFarStamp(t *testing.T) {
	evs := []event{
		{0, evNode, "b1 clock offset=0s drift=0ppm"},
		{27 * 365 * 24 * time.Hour, evCheck, "LIVENESS budget: far out"},
	}
	if n := len(readTimeline(evs).svg(1)); n > 64<<10 {
		t.Fatalf("picture of two events is %d bytes", n)
	}
}

// TestTraceAddLast: an event recorded from outside the bubble takes the
// latest instant recorded, not the wall clock.
func TestTraceAddLast(t *testing.T) {
	tr := newTrace()
	tr.record(event{at: 3 * time.Second, kind: evNode, text: "b1 started"})
	tr.record(event{at: time.Second, kind: evNode, text: "b2 started"})
	tr.addLast(evCheck, "LIVENESS budget: %s", "x")
	for _, e := range tr.canonical() {
		if e.kind == evCheck && e.at != 3*time.Second {
			t.Fatalf("the check is at %v, want 3s", e.at)
		}
	}
}
