package deployment

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

var update = flag.Bool("update", false, "rewrite the golden rollout logs in testdata/")

func TestResolveFenceposts(t *testing.T) {
	cases := []struct {
		name                   string
		surge, unavailable     intstr.IntOrString
		replicas               int32
		wantSurge, wantUnavail int32
	}{
		{"25% of 10: surge rounds up, unavailable down", intstr.FromString("25%"), intstr.FromString("25%"), 10, 3, 2},
		{"absolute numbers are taken as they are", intstr.FromInt32(3), intstr.FromInt32(1), 6, 3, 1},
		{"both round to zero: unavailable becomes 1", intstr.FromString("1%"), intstr.FromString("1%"), 10, 1, 0},
		{"unavailable rounds to zero, surge 0: unavailable becomes 1", intstr.FromString("0%"), intstr.FromString("5%"), 10, 0, 1},
		{"zero replicas", intstr.FromString("25%"), intstr.FromString("25%"), 0, 0, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, u, err := ResolveFenceposts(&c.surge, &c.unavailable, c.replicas)
			if err != nil {
				t.Fatal(err)
			}
			if s != c.wantSurge || u != c.wantUnavail {
				t.Errorf("got surge %d unavailable %d, want %d %d", s, u, c.wantSurge, c.wantUnavail)
			}
		})
	}
	bad := intstr.FromString("many")
	if _, _, err := ResolveFenceposts(&bad, nil, 3); err == nil || !strings.Contains(err.Error(), "maxSurge") {
		t.Errorf("a malformed maxSurge gave %v, want an error naming maxSurge", err)
	}
}

func TestResolveStrategyDefaults(t *testing.T) {
	s, err := ResolveStrategy(appsv1.DeploymentSpec{Replicas: ptr.To[int32](4)})
	if err != nil {
		t.Fatal(err)
	}
	if s != (Strategy{MaxSurge: 1, MaxUnavailable: 1}) {
		t.Errorf("default strategy for 4 replicas = %+v, want 25%%/25%% = surge 1 unavailable 1", s)
	}
	s, err = ResolveStrategy(appsv1.DeploymentSpec{Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}})
	if err != nil || !s.Recreate {
		t.Errorf("Recreate resolved to %+v, %v", s, err)
	}
}

func TestProportionalScalingMidRollout(t *testing.T) {
	// 10 replicas, surge 3: old 8, new 5 (13 = max). Scale to 20 (surge 5):
	// 25 allowed, 12 to add, in proportion 8/13 and 5/13 of 25.
	s := RolloutState{
		Replicas: 20, StatusReplicas: 13, Strategy: Strategy{MaxSurge: 5, MaxUnavailable: 5},
		New: ReplicaSetState{Name: "new", Replicas: 5, Pods: 5, DesiredReplicas: ptr.To[int32](10), MaxReplicas: ptr.To[int32](13)},
		Old: []ReplicaSetState{{Name: "old", Replicas: 8, Pods: 8, Available: 8, DesiredReplicas: ptr.To[int32](10), MaxReplicas: ptr.To[int32](13)}},
	}
	p := PlanRollout(s)
	want := []ScaleAction{{"new", 10, 20, 25}, {"old", 15, 20, 25}}
	if p.Reason != ReasonScaling || fmt.Sprint(p.Actions) != fmt.Sprint(want) {
		t.Errorf("got %s %v, want %s %v", p.Reason, p.Actions, ReasonScaling, want)
	}
}

// scenario is one golden rollout.
type scenario struct {
	name       string
	replicas   int32
	strategy   appsv1.DeploymentStrategy
	readyAfter int           // steps from creation until a pod is available
	neverReady bool          // pods of the rollout's new ReplicaSets never become available
	scaleAt    map[int]int32 // step -> new spec.replicas
	templateAt map[int]bool  // step -> a new template (a new ReplicaSet)
	maxSteps   int
}

func rolling(surge, unavailable intstr.IntOrString) appsv1.DeploymentStrategy {
	return appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable}}
}

func TestRolloutGolden(t *testing.T) {
	pct := intstr.FromString
	num := intstr.FromInt32
	scenarios := []scenario{
		{name: "regular rollout, 10 replicas, maxsurge 25%, maxunavailable 25%", replicas: 10, strategy: rolling(pct("25%"), pct("25%"))},
		{name: "regular rollout, 6 replicas, maxsurge 3, maxunavailable 1", replicas: 6, strategy: rolling(num(3), num(1))},
		{name: "regular rollout, 3 replicas, maxsurge 0, maxunavailable 1", replicas: 3, strategy: rolling(num(0), num(1))},
		{name: "regular rollout, 3 replicas, maxsurge 1, maxunavailable 0", replicas: 3, strategy: rolling(num(1), num(0))},
		{name: "regular rollout, 10 replicas, maxsurge 1%, maxunavailable 1%", replicas: 10, strategy: rolling(pct("1%"), pct("1%"))},
		{name: "slow pods, 5 replicas, maxsurge 2, maxunavailable 0, ready after 3 steps", replicas: 5, strategy: rolling(num(2), num(0)), readyAfter: 3},
		{name: "scale up halfway, 10 to 20 replicas, maxsurge 25%, maxunavailable 25%", replicas: 10, strategy: rolling(pct("25%"), pct("25%")), readyAfter: 2, scaleAt: map[int]int32{3: 20}},
		{name: "scale down halfway, 10 to 4 replicas, maxsurge 3, maxunavailable 2", replicas: 10, strategy: rolling(num(3), num(2)), readyAfter: 2, scaleAt: map[int]int32{3: 4}},
		{name: "new template halfway, 10 replicas, maxsurge 3, maxunavailable 2", replicas: 10, strategy: rolling(num(3), num(2)), readyAfter: 2, templateAt: map[int]bool{3: true}},
		{name: "recreate, 5 replicas", replicas: 5, strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}},
		{name: "stuck rollout, 10 replicas, maxsurge 25%, maxunavailable 25%, new pods never available", replicas: 10, strategy: rolling(pct("25%"), pct("25%")), neverReady: true},
		{name: "stuck rollout, 4 replicas, maxsurge 0, maxunavailable 1, new pods never available", replicas: 4, strategy: rolling(num(0), num(1)), neverReady: true},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			got := simulate(t, sc)
			path := filepath.Join("testdata", sc.name+".golden.log")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("rollout log differs from %s (run with -update if the change is intended):\n%s", path, got)
			}
		})
	}
}

// simRS is a ReplicaSet in the simulator: its pods, by the step at which each
// becomes available (-1: never).
type simRS struct {
	name        string
	readyAt     []int
	terminating int32
	neverReady  bool
	desired     *int32
	max         *int32
}

func (rs *simRS) available(step int) int32 {
	var n int32
	for _, at := range rs.readyAt {
		if at >= 0 && at <= step {
			n++
		}
	}
	return n
}

func (rs *simRS) state(step int) ReplicaSetState {
	return ReplicaSetState{Name: rs.name, Replicas: int32(len(rs.readyAt)), Pods: int32(len(rs.readyAt)) + rs.terminating,
		Available: rs.available(step), DesiredReplicas: rs.desired, MaxReplicas: rs.max}
}

// scale does what the ReplicaSet controller would: create pods, or delete
// them, not-yet-available (newest) first.
func (rs *simRS) scale(to int32, step, readyAfter int) {
	for int32(len(rs.readyAt)) < to {
		at := step + readyAfter
		if rs.neverReady {
			at = -1
		}
		rs.readyAt = append(rs.readyAt, at)
	}
	for int32(len(rs.readyAt)) > to {
		victim := len(rs.readyAt) - 1
		for i := len(rs.readyAt) - 1; i >= 0; i-- {
			if at := rs.readyAt[i]; at < 0 || at > step {
				victim = i
				break
			}
		}
		rs.readyAt = append(rs.readyAt[:victim], rs.readyAt[victim+1:]...)
		rs.terminating++
	}
}

// simulate drives the planner step by step, checks the invariants at every
// step, and returns the rollout log.
func simulate(t *testing.T, sc scenario) string {
	t.Helper()
	if sc.readyAfter == 0 {
		sc.readyAfter = 1
	}
	if sc.maxSteps == 0 {
		sc.maxSteps = 60
	}
	replicas := sc.replicas
	resolve := func() Strategy {
		s, err := ResolveStrategy(appsv1.DeploymentSpec{Replicas: &replicas, Strategy: sc.strategy})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	strategy := resolve()
	annotate := func(rs *simRS) {
		rs.desired, rs.max = ptr.To(replicas), ptr.To(replicas+strategy.MaxSurge)
	}
	names := 1
	newRS := func(neverReady bool) *simRS {
		rs := &simRS{name: fmt.Sprintf("rs%d", names), neverReady: neverReady}
		names++
		annotate(rs)
		return rs
	}
	// The old template is fully rolled out; the new one has just arrived.
	first := newRS(false)
	first.scale(replicas, 0, 0)
	old := []*simRS{first}
	cur := newRS(sc.neverReady)

	var log strings.Builder
	fmt.Fprintf(&log, "# %s\n# replicas %d, %s\n", sc.name, replicas, describe(strategy))
	line := func(step int, what string) {
		all := append(append([]*simRS(nil), old...), cur) // oldest first
		var parts []string
		var pods, avail int32
		for _, rs := range all {
			st := rs.state(step)
			pods += st.Replicas
			avail += st.Available
			extra := ""
			if rs.terminating > 0 {
				extra = fmt.Sprintf(", %d terminating", rs.terminating)
			}
			parts = append(parts, fmt.Sprintf("%s %d (%d available%s)", rs.name, st.Replicas, st.Available, extra))
		}
		fmt.Fprintf(&log, "step %2d: %-40s | %s | pods %d, available %d\n", step, what, strings.Join(parts, ", "), pods, avail)
	}
	line(0, "start")

	for step := 1; step <= sc.maxSteps; step++ {
		for _, rs := range append([]*simRS{cur}, old...) {
			rs.terminating = 0
		}
		if r, ok := sc.scaleAt[step]; ok {
			fmt.Fprintf(&log, "step %2d: spec.replicas %d -> %d\n", step, replicas, r)
			replicas = r
			strategy = resolve()
		}
		if sc.templateAt[step] {
			old = append(old, cur)
			cur = newRS(sc.neverReady)
			fmt.Fprintf(&log, "step %2d: new template, new ReplicaSet %s\n", step, cur.name)
		}

		state := RolloutState{Replicas: replicas, Strategy: strategy, New: cur.state(step)}
		for _, rs := range old {
			state.Old = append(state.Old, rs.state(step))
			state.StatusReplicas += int32(len(rs.readyAt))
		}
		state.StatusReplicas += int32(len(cur.readyAt))
		podsBefore, availBefore := countPods(state), sumAvailable(state.all())

		plan := PlanRollout(state)
		byName := map[string]*simRS{cur.name: cur}
		for _, rs := range old {
			byName[rs.name] = rs
		}
		var did []string
		for _, a := range plan.Actions {
			rs := byName[a.Name]
			if rs == nil {
				t.Fatalf("step %d: plan scales unknown ReplicaSet %q", step, a.Name)
			}
			rs.scale(a.Replicas, step, sc.readyAfter)
			rs.desired, rs.max = ptr.To(a.DesiredReplicas), ptr.To(a.MaxReplicas)
			did = append(did, fmt.Sprintf("%s=%d", a.Name, a.Replicas))
		}

		// Invariants, on the state right after the plan was applied.
		after := RolloutState{New: cur.state(step)}
		for _, rs := range old {
			after.Old = append(after.Old, rs.state(step))
		}
		if !strategy.Recreate {
			if maxPods := max(podsBefore, replicas+strategy.MaxSurge); countPods(after) > maxPods {
				t.Errorf("step %d: %d pods, more than replicas %d + maxSurge %d", step, countPods(after), replicas, strategy.MaxSurge)
			}
			if minAvail := min(availBefore, replicas-strategy.MaxUnavailable); sumAvailable(after.all()) < minAvail {
				t.Errorf("step %d: %d pods available, fewer than replicas %d - maxUnavailable %d", step, sumAvailable(after.all()), replicas, strategy.MaxUnavailable)
			}
		} else if cur.state(step).Replicas > 0 {
			for _, rs := range old {
				if rs.state(step).Pods > 0 {
					t.Errorf("step %d: Recreate started new pods while %s still has pods", step, rs.name)
				}
			}
		}

		what := plan.Reason
		if what == "" {
			what = "wait"
		}
		if len(did) > 0 {
			what += " " + strings.Join(did, " ")
		}
		line(step, what)

		if len(plan.Actions) == 0 && !pendingEvents(sc, step) {
			if rolloutComplete(after, replicas, step) {
				fmt.Fprintf(&log, "rollout complete after %d steps\n", step)
				return log.String()
			}
			if !anyPodWillBecomeAvailable(append([]*simRS{cur}, old...), step) && plan.Reason != ReasonWaitOldPods && !anyTerminating(append([]*simRS{cur}, old...)) {
				if !sc.neverReady {
					t.Errorf("step %d: rollout stuck without a reason", step)
				}
				fmt.Fprintf(&log, "rollout stuck after %d steps: no pod will become available\n", step)
				return log.String()
			}
		}
	}
	t.Errorf("rollout did not finish in %d steps", sc.maxSteps)
	return log.String()
}

func countPods(s RolloutState) int32 { return sumReplicas(s.all()) }

func rolloutComplete(s RolloutState, replicas int32, step int) bool {
	if s.New.Replicas != replicas || s.New.Available != replicas {
		return false
	}
	for _, rs := range s.Old {
		if rs.Pods > 0 {
			return false
		}
	}
	return true
}

func pendingEvents(sc scenario, step int) bool {
	for at := range sc.scaleAt {
		if at > step {
			return true
		}
	}
	for at := range sc.templateAt {
		if at > step {
			return true
		}
	}
	return false
}

func anyPodWillBecomeAvailable(rss []*simRS, step int) bool {
	for _, rs := range rss {
		for _, at := range rs.readyAt {
			if at > step {
				return true
			}
		}
	}
	return false
}

func anyTerminating(rss []*simRS) bool {
	for _, rs := range rss {
		if rs.terminating > 0 {
			return true
		}
	}
	return false
}

func describe(s Strategy) string {
	if s.Recreate {
		return "Recreate"
	}
	return fmt.Sprintf("RollingUpdate: maxSurge %d, maxUnavailable %d", s.MaxSurge, s.MaxUnavailable)
}

// TestFractionWithoutMaxReplicas: a ReplicaSet without a max-replicas
// annotation, or with 0 (left by a scale to zero), is scaled against the
// Deployment's current size (status.replicas), as upstream.
func TestFractionWithoutMaxReplicas(t *testing.T) {
	s := RolloutState{Replicas: 16, StatusReplicas: 8}
	cases := []struct {
		name        string
		maxReplicas *int32
		want        int32
	}{
		{"annotated: scaled against max-replicas", ptr.To[int32](4), 12},
		{"no annotation: against status.replicas", nil, 4},
		{"annotation 0: against status.replicas", ptr.To[int32](0), 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := ReplicaSetState{Name: "rs", Replicas: 4, MaxReplicas: c.maxReplicas}
			if got := fraction(s, rs); got != c.want {
				t.Errorf("fraction = %d, want %d (4 replicas grown to 16 out of %v)", got, c.want, c.maxReplicas)
			}
		})
	}
}
