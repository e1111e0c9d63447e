package doctest

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// page joins lines into a Markdown page; "```" is written as ”' so the
// tables stay readable.
func page(lines ...string) []byte {
	return []byte(strings.ReplaceAll(strings.Join(lines, "\n"), "'''", "```"))
}

func TestParse(t *testing.T) {
	cases := []struct {
		name string
		page []byte
		want []Command
	}{
		{
			name: "command with output, trailing empty lines dropped",
			page: page(
				"# Tour", // line 1
				"",
				"'''console",
				"$ kubectl get pods -o wide",
				"NAME                   READY   STATUS    RESTARTS   AGE   IP           NODE",
				"web-8668b8587c-kvqbp   True    Running   0          36s   10.244.2.4   vm-2",
				"",
				"",
				"'''",
			),
			want: []Command{{Line: 4, Text: "kubectl get pods -o wide", Output: []string{
				"NAME                   READY   STATUS    RESTARTS   AGE   IP           NODE",
				"web-8668b8587c-kvqbp   True    Running   0          36s   10.244.2.4   vm-2",
			}}},
		},
		{
			name: "backslash continuations keep the backslash-newline",
			page: page(
				"'''console",
				`$ kubectl create deployment web \`,
				`    --image=nginx \`,
				"    --replicas=3",
				"deployment.apps.skiff.dev/web created",
				"'''",
			),
			want: []Command{{Line: 2, Text: "kubectl create deployment web \\\n    --image=nginx \\\n    --replicas=3",
				Output: []string{"deployment.apps.skiff.dev/web created"}}},
		},
		{
			name: "heredoc quoting forms and a here-string",
			page: page(
				"'''console",
				"$ kubectl apply -f - <<'YAML'",
				"kind: Service",
				"YAML",
				"service/web created",
				"$ cat <<YAML",
				"a: b",
				"YAML",
				`$ cat <<"EOF" | wc -l`,
				"EOF inside is not the end",
				"EOF",
				"2",
				"$ cat <<-EOF",
				"\tindented",
				"\tEOF",
				"$ tr a-z A-Z <<< 'no body'",
				"NO BODY",
				"'''",
			),
			want: []Command{
				{Line: 2, Text: "kubectl apply -f - <<'YAML'\nkind: Service\nYAML", Output: []string{"service/web created"}},
				{Line: 6, Text: "cat <<YAML\na: b\nYAML"},
				{Line: 9, Text: "cat <<\"EOF\" | wc -l\nEOF inside is not the end\nEOF", Output: []string{"2"}},
				{Line: 13, Text: "cat <<-EOF\n\tindented\n\tEOF"},
				{Line: 16, Text: "tr a-z A-Z <<< 'no body'", Output: []string{"NO BODY"}},
			},
		},
		{
			name: "heredoc opened on a continued line",
			page: page(
				"'''console",
				`$ kubectl apply \`,
				"    -f - <<EOF",
				"kind: Pod",
				"EOF",
				"pod/hello created",
				"'''",
			),
			want: []Command{{Line: 2, Text: "kubectl apply \\\n    -f - <<EOF\nkind: Pod\nEOF", Output: []string{"pod/hello created"}}},
		},
		{
			name: "trailing comment stays in the text, quoted # and << do not count",
			page: page(
				"'''console",
				"$ kubectl skiff rollout undo deploy/web    # like kubectl rollout undo",
				"deployment.apps.skiff.dev/web rolled back",
				`$ echo "a # b <<EOF" 'c#d'`,
				"a # b <<EOF c#d",
				"'''",
			),
			want: []Command{
				{Line: 2, Text: "kubectl skiff rollout undo deploy/web    # like kubectl rollout undo",
					Comment: "like kubectl rollout undo", Output: []string{"deployment.apps.skiff.dev/web rolled back"}},
				{Line: 4, Text: `echo "a # b <<EOF" 'c#d'`, Output: []string{"a # b <<EOF c#d"}},
			},
		},
		{
			name: "several console blocks, other blocks ignored, indented block in a list",
			page: page(
				"'''yaml",
				"$ not a command",
				"'''",
				"'''sh",
				"$ echo ignored",
				"'''",
				"'''console",
				"$ kubectl get nodes",
				"NAME   STATUS",
				"vm-1   Ready",
				"'''",
				"",
				"1. Then:",
				"   '''console title=\"step\"",
				"   $ kubectl delete pod web",
				"   pod \"web\" deleted",
				"   '''",
				"````md",
				"'''console",
				"$ inside a four-backtick block",
				"'''",
				"````",
			),
			want: []Command{
				{Line: 8, Text: "kubectl get nodes", Output: []string{"NAME   STATUS", "vm-1   Ready"}},
				{Line: 15, Text: "kubectl delete pod web", Output: []string{`pod "web" deleted`}},
			},
		},
		{
			name: "blank lines before the first command, CRLF page",
			page: []byte("```console\r\n\r\n$ true\r\n```\r\n"),
			want: []Command{{Line: 3, Text: "true"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.page)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse got\n%#v\nwant\n%#v", got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name    string
		page    []byte
		wantErr string
	}{
		{
			name:    "output before the first command",
			page:    page("text", "'''console", "NAME   READY", "$ kubectl get pods", "'''"),
			wantErr: `line 3: console block shows output "NAME   READY" before any command`,
		},
		{
			name:    "unclosed heredoc",
			page:    page("'''console", "$ cat <<'YAML'", "a: b", "'''"),
			wantErr: `line 2: heredoc "YAML" is not closed`,
		},
		{
			name:    "continuation at the block end",
			page:    page("'''console", "$ kubectl get \\", "'''"),
			wantErr: "line 2: command ends with \\",
		},
		{
			name:    "unclosed console block",
			page:    page("", "'''console", "$ true"),
			wantErr: "line 2: console block is never closed",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmds, err := Parse(tc.page)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse = %v, %v; want error containing %q", cmds, err, tc.wantErr)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	nodes := DefaultNormalizer().With(regexp.MustCompile(`\b(vm|sktour)-\d+\b`), "NODE")
	cases := []struct {
		name, line, want string
	}{
		{"timestamp with zone", "lastTransitionTime: 2024-05-01T12:03:04Z", "lastTransitionTime: TIME"},
		{"timestamp with fraction and offset", "at 2024-05-01T12:03:04.123456+02:00.", "at TIME."},
		{"uid", "uid: 3f2c1a9e-7b4d-4e2f-9a8b-0c1d2e3f4a5b", "uid: UID"},
		{"ip", "10.244.2.4   vm-2", "IP NODE"},
		{"ip and port, cidr", "Endpoints: 10.244.1.3:80,10.244.2.4:8080  10.96.0.0/12", "Endpoints: IP:PORT,IP:PORT IP/12"},
		{"pod of a deployment", "web-8668b8587c-kvqbp   True", "web-HASH-XXXXX True"},
		{"replicaset and statefulset revision", "web-8668b8587c  db-5f6d7c8b9", "web-HASH db-HASH"},
		{"pod of a job, qualified", "pod/countdown-x7k2p", "pod/countdown-XXXXX"},
		{"cronjob job and its pod", "hello-29400000 hello-29422222-x7k2p", "hello-N hello-N-XXXXX"},
		{"ordinary words untouched", "web-revision node-hello liftoff condition-met", "web-revision node-hello liftoff condition-met"},
		{"short flags untouched", "kubectl get -o wide --show-labels", "kubectl get -o wide --show-labels"},
		{"ages", "5s 12m 3h 2d 2m30s 4h5m <invalid> 5.2s 150ms 3y", "AGE AGE AGE AGE AGE AGE AGE AGE AGE AGE"},
		{"not ages", "64Mi 8080/TCP 3/3 5sec s5 (x2", "64Mi 8080/TCP 3/3 5sec s5 (x2"},
		{"tabs and trailing blanks", "a\t\tb   c  \t", "a b c"},
		{"added rule runs after the defaults", "sktour-1 vm-12", "NODE NODE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := nodes.Normalize(tc.line); got != tc.want {
				t.Errorf("Normalize(%q) = %q, want %q", tc.line, got, tc.want)
			}
		})
	}
}

func TestWithDoesNotChangeTheOriginal(t *testing.T) {
	base := DefaultNormalizer()
	a := base.With(regexp.MustCompile(`a`), "A")
	b := base.With(regexp.MustCompile(`a`), "B")
	if got := base.Normalize("a"); got != "a" {
		t.Errorf("base.Normalize(a) = %q, want a", got)
	}
	if got := a.Normalize("a") + b.Normalize("a"); got != "AB" {
		t.Errorf("a and b normalize a to %q, want AB", got)
	}
}

func TestMatch(t *testing.T) {
	pods := []string{
		"NAME                   READY   STATUS    RESTARTS   AGE   IP           NODE",
		"web-8668b8587c-kvqbp   True    Running   0          36s   10.244.2.4   vm-2",
		"web-8668b8587c-xz9rt   True    Running   0          36s   10.244.1.7   vm-1",
		"web-8668b8587c-q2w4n   False   Pending   0          2s    <none>       <none>",
	}
	events := []string{
		"Events:",
		"  Type    Reason     Age   From               Message",
		"  ----    ------     ----  ----               -------",
		"  Normal  Scheduled  12s   default-scheduler  Successfully assigned default/web-5f6d7c8b9-g6pgb to sktour-2",
		"  Normal  Pulled     11s   kubelet            Container image \"nginx:1.27\" already present on machine",
		"  Normal  Started    10s   kubelet            Started container nginx",
	}
	cases := []struct {
		name      string
		want, got []string
		ok        bool
	}{
		{
			name: "same table with other names, IPs, ages and column widths",
			want: pods,
			got: []string{
				"NAME                    READY   STATUS    RESTARTS   AGE    IP            NODE",
				"web-5f6d7c8b9-g6pgb     True    Running   0          2m1s   10.244.12.4   sktour-2",
				"web-5f6d7c8b9-k2mnp     True    Running   0          2m1s   10.244.3.17   sktour-1",
				"web-5f6d7c8b9-x7k2p     False   Pending   0          1s     <none>        <none>",
			},
			ok: true,
		},
		{
			name: "rows in another order",
			want: pods,
			got:  []string{pods[0], pods[3], pods[1], pods[2]},
			ok:   true,
		},
		{
			name: "a row missing",
			want: pods,
			got:  pods[:3],
		},
		{
			name: "a row in another state",
			want: pods,
			got:  []string{pods[0], pods[1], pods[1], pods[2]},
		},
		{
			name: "header is not sorted with the rows",
			want: []string{"NAME READY", "a 1", "b 2"},
			got:  []string{"a 1", "NAME READY", "b 2"},
		},
		{
			name: "... at the start",
			want: []string{"...", "  Normal  Started    10s   kubelet            Started container nginx"},
			got:  events,
			ok:   true,
		},
		{
			name: "... in the middle, non-greedy with backtracking",
			want: []string{"Events:", "...", "  Normal  Pulled     5s    kubelet  Container image \"nginx:1.27\" already present on machine", "..."},
			got:  events,
			ok:   true,
		},
		{
			name: "... at the end may match nothing",
			want: []string{"Events:", "  Type    Reason     Age   From               Message", "  ----    ------     ----  ----               -------", "  Normal  Scheduled  12s   default-scheduler  Successfully assigned default/web-8668b8587c-kvqbp to vm-1", "  Normal  Pulled ...", "  Normal  Started    10s   kubelet            Started container nginx", "..."},
			got:  events,
			ok:   true,
		},
		{
			name: "... lines keep their order",
			want: []string{"...", "  Normal  Started    10s   kubelet            Started container nginx", "...", "  Normal  Pulled ..."},
			got:  events,
		},
		{
			name: "a prefix line matches a longer message",
			want: []string{"Warning  BackOff  3s  kubelet  Back-off restarting failed container ..."},
			got:  []string{"Warning  BackOff  1s  kubelet  Back-off restarting failed container crash in pod crashy-x7k2p_default(UID)"},
			ok:   true,
		},
		{
			name: "a prefix line needs its prefix",
			want: []string{"Warning  BackOff  3s  kubelet  Back-off restarting failed container ..."},
			got:  []string{"Warning  BackOff  1s  kubelet  Back-off pulling image"},
		},
		{
			name: "sorted rows with a prefix line",
			want: []string{"NAME MESSAGE", "b two", "a one ..."},
			got:  []string{"NAME MESSAGE", "a one and more", "b two"},
			ok:   true,
		},
		{
			name: "empty matches empty and a trailing newline",
			want: nil,
			got:  []string{""},
			ok:   true,
		},
		{
			name: "empty want does not match output",
			want: nil,
			got:  []string{"pod/web created"},
		},
		{
			name: "output does not match empty got",
			want: []string{"pod/web created"},
			got:  nil,
		},
	}
	n := DefaultNormalizer().With(regexp.MustCompile(`\b(vm|sktour)-\d+\b`), "NODE")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Match(tc.want, tc.got, n)
			if tc.ok && err != nil {
				t.Errorf("Match: %v", err)
			}
			if !tc.ok && err == nil {
				t.Errorf("Match accepted\n%s\nas\n%s", strings.Join(tc.got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestMatchErrorShowsTheFirstDifference(t *testing.T) {
	want := []string{
		"NAME   READY   UP-TO-DATE   AVAILABLE   AGE",
		"web    3/3     3            3           40s",
	}
	got := []string{
		"NAME   READY   UP-TO-DATE   AVAILABLE   AGE",
		"web    2/3     3            2           41s",
	}
	err := Match(want, got, DefaultNormalizer())
	if err == nil {
		t.Fatal("Match accepted a deployment with 2/3 ready")
	}
	for _, part := range []string{
		"at shown line 2, real line 2",
		"  shown: web 3/3 3 3 AGE\n  real:  web 2/3 3 2 AGE",
		"--- shown (normalized)\n    1 NAME READY UP-TO-DATE AVAILABLE AGE\n>   2 web 3/3 3 3 AGE",
		"--- real (normalized)\n    1 NAME READY UP-TO-DATE AVAILABLE AGE\n>   2 web 2/3 3 2 AGE",
	} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error lacks %q:\n%v", part, err)
		}
	}
}

func TestMatchErrorAfterEllipsisPointsAtTheMissingLine(t *testing.T) {
	err := Match([]string{"start", "...", "done"}, []string{"start", "x", "y"}, Normalizer{})
	if err == nil {
		t.Fatal("Match accepted output without its last line")
	}
	if want := "  shown: done\n  real:  <end of output>"; !strings.Contains(err.Error(), want) {
		t.Errorf("error lacks %q:\n%v", want, err)
	}
}
