package cluster

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// childEnv marks a re-executed test binary that runs one cluster member
// (TestClusterMemberChild); its value is the seed to join, or "-".
const childEnv = "GATEWAY_CLUSTER_TEST_CHILD"

const childIdentities = 8

// TestTwoProcessClusterRoutesToOneOwner runs a real two-member protoactor
// cluster (remote + disthash + this provider) in two child processes — one
// remote per process, as in production — and checks that a request for the
// same identity from either process reaches the same owner.
func TestTwoProcessClusterRoutesToOneOwner(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two processes")
	}
	a := startChild(t, "-")
	seed := a.expect(t, "GOSSIP")
	b := startChild(t, seed)
	ra, rb := a.results(t), b.results(t)
	owners := map[string]bool{}
	for id, oa := range ra {
		if rb[id] != oa {
			t.Errorf("%s: owner via a = %s, via b = %s", id, oa, rb[id])
		}
		owners[oa] = true
	}
	t.Logf("owners of %d identities: %v", len(ra), owners)
	a.stop(t)
	b.stop(t)
}

type child struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer // written by exec until Wait returns
	in     io.WriteCloser
	lines  chan string
}

func startChild(t *testing.T, seed string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestClusterMemberChild$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+seed)
	c := &child{cmd: cmd, lines: make(chan string, 64)}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &c.stderr // race reports; see child.stop
	c.in = in
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.lines)
		s := bufio.NewScanner(out)
		for s.Scan() {
			c.lines <- s.Text()
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return c
}

// expect returns the rest of the next line starting with tag.
func (c *child) expect(t *testing.T, tag string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("child exited before %s", tag)
			}
			if rest, found := strings.CutPrefix(l, tag+" "); found {
				return rest
			}
		case <-timeout:
			t.Fatalf("child did not print %s", tag)
		}
	}
}

func (c *child) results(t *testing.T) map[string]string {
	t.Helper()
	r := map[string]string{}
	for range childIdentities {
		id, owner, _ := strings.Cut(c.expect(t, "RESULT"), " ")
		r[id] = owner
	}
	return r
}

func (c *child) stop(t *testing.T) {
	t.Helper()
	_ = c.in.Close() // the child leaves and exits on EOF
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			var rest []string
			for l := range c.lines {
				rest = append(rest, l)
			}
			out := strings.Join(rest, "\n")
			// A race reported after the test function returned (during the
			// child's shutdown) exits 66 with the test itself passed.
			raced := strings.Contains(out, "race detected during execution of test") ||
				strings.Contains(c.stderr.String(), "WARNING: DATA RACE")
			if raced && !strings.Contains(out, "child_test.go:") {
				// The only failure is the race detector's. Races whose
				// accesses are both inside protoactor-go (its BlockList
				// and MemberList are read without their locks while
				// UpdateClusterTopology runs; libraries.md §2.6) are
				// logged; one in our code fails the test.
				if ours := racesInOurCode(c.stderr.String()); len(ours) > 0 {
					t.Errorf("child: data race in our code:\n%s", strings.Join(ours, "\n"))
				} else {
					t.Logf("child: %v: the race detector reports races inside protoactor-go only", err)
				}
				return
			}
			t.Errorf("child: %v; output:\n%s", err, out)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("child did not exit")
	}
}

// TestClusterMemberChild is one member of TestTwoProcessClusterRoutesToOneOwner.
func TestClusterMemberChild(t *testing.T) {
	seed := os.Getenv(childEnv)
	if seed == "" {
		t.Skip("runs only as a child of TestTwoProcessClusterRoutesToOneOwner")
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	kind := protocluster.NewKind("echo", actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*wrapperspb.StringValue); ok {
			c.Respond(wrapperspb.String(c.ActorSystem().Address()))
		}
	}))
	cfg := DefaultConfig()
	if seed != "-" {
		cfg.Seeds = []string{seed}
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// disthash swaps its rendezvous table without a lock when a topology
	// is published, and Cluster.Request reads it (a race inside
	// protoactor-go). Requesting only after the publisher has returned from
	// the two-member publication gives the race detector its
	// happens-before edge; with two stable members nothing is published
	// afterwards.
	two := make(chan struct{})
	var once sync.Once
	p.onPublished = func(ms protocluster.Members) {
		if len(ms) == 2 {
			once.Do(func() { close(two) })
		}
	}
	c := protocluster.New(sys, protocluster.Configure("gw-test", p, disthash.New(),
		remote.Configure("127.0.0.1", 0), protocluster.WithKinds(kind), protocluster.WithRequestTimeout(2*time.Second)))
	c.StartMember()
	fmt.Println("GOSSIP", p.GossipAddr())
	select {
	case <-two:
	case <-time.After(20 * time.Second):
		t.Fatal("never saw two members")
	}
	for i := range childIdentities {
		id := fmt.Sprintf("user-%d", i)
		res, err := c.Request(id, "echo", wrapperspb.String("who"))
		if err != nil {
			t.Fatalf("Request(%s): %v", id, err)
		}
		fmt.Println("RESULT", id, res.(*wrapperspb.StringValue).GetValue())
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = p.Shutdown(true)
}

// racesInOurCode returns, from race detector output, the accesses whose
// innermost non-runtime frame is in this module.
func racesInOurCode(report string) []string {
	var ours []string
	lines := strings.Split(report, "\n")
	for i, l := range lines {
		if !strings.HasSuffix(l, ":") || !strings.Contains(l, " at 0x") {
			continue // not "Read at 0x... by goroutine N:"
		}
		for _, f := range lines[i+1:] {
			f = strings.TrimSpace(f)
			if f == "" || strings.HasPrefix(f, "runtime.") || strings.HasPrefix(f, "/") || strings.HasPrefix(f, "<autogenerated>") {
				continue
			}
			if strings.HasPrefix(f, "github.com/assistiv/gateway/") {
				ours = append(ours, l+" "+f)
			}
			break
		}
	}
	return ours
}

func TestRacesInOurCode(t *testing.T) {
	report := `WARNING: DATA RACE
Read at 0x00c0003b4298 by goroutine 29:
  runtime.raceread()
      <autogenerated>:1 +0x1e
  github.com/asynkron/protoactor-go/remote.(*BlockList).BlockedMembers()
      /x/blocklist.go:1 +0x1
  github.com/assistiv/gateway/cluster.(*Provider).publisher()
      /x/provider.go:1 +0x1

Previous write at 0x00c0003b4298 by goroutine 68:
  github.com/assistiv/gateway/cluster.(*Provider).Shutdown()
      /x/provider.go:2 +0x1

Goroutine 29 (running) created at:
  github.com/assistiv/gateway/cluster.(*Provider).start()
`
	got := racesInOurCode(report)
	if len(got) != 1 || !strings.Contains(got[0], "Shutdown") {
		t.Fatalf("racesInOurCode = %q, want the Shutdown access only", got)
	}
}
