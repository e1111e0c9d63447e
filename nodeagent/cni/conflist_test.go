package cni

import (
	"strings"
	"testing"
)

func TestRenderConfList(t *testing.T) {
	const want = `{
  "cniVersion": "1.0.0",
  "name": "skiff",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "skiff0",
      "isGateway": true,
      "forceAddress": true,
      "ipMasq": false,
      "hairpinMode": true,
      "mtu": 1450,
      "ipam": {
        "type": "host-local",
        "ranges": [
          [
            {
              "subnet": "10.244.1.0/24"
            }
          ]
        ],
        "routes": [
          {
            "dst": "0.0.0.0/0"
          }
        ],
        "dataDir": "/state/ipam"
      }
    },
    {
      "type": "portmap",
      "capabilities": {
        "portMappings": true
      },
      "snat": true
    }
  ]
}`
	tests := []struct {
		name    string
		cidr    string
		bridge  string
		mtu     int
		dataDir string
		want    string // the whole JSON, or a fragment it must contain
		wantErr string
	}{
		{name: "a node's podCIDR", cidr: "10.244.1.0/24", bridge: "skiff0", mtu: 1450, dataDir: "/state/ipam", want: want},
		{name: "host bits are dropped", cidr: "10.244.1.7/24", bridge: "skiff0", dataDir: "/d", want: `"subnet": "10.244.1.0/24"`},
		{name: "mtu 0 keeps the plugin's default", cidr: "10.244.1.0/24", bridge: "skiff0", dataDir: "/d", want: `"hairpinMode": true,
      "ipam"`},
		{name: "the smallest range, /30", cidr: "10.244.9.4/30", bridge: "b", dataDir: "/d", want: `"subnet": "10.244.9.4/30"`},
		{name: "not a CIDR", cidr: "10.244.1.0", bridge: "skiff0", dataDir: "/d", wantErr: "must be an IPv4 CIDR such as 10.244.1.0/24"},
		{name: "empty CIDR", cidr: "", bridge: "skiff0", dataDir: "/d", wantErr: "must be an IPv4 CIDR"},
		{name: "IPv6", cidr: "fd00:10:244::/64", bridge: "skiff0", dataDir: "/d", wantErr: "must be IPv4"},
		{name: "no room for a pod", cidr: "10.244.1.0/31", bridge: "skiff0", dataDir: "/d", wantErr: "must be /30 or wider"},
		{name: "bridge name too long", cidr: "10.244.1.0/24", bridge: "skiff0123456789x", dataDir: "/d", wantErr: "must be 1 to 15 characters"},
		{name: "no bridge name", cidr: "10.244.1.0/24", bridge: "", dataDir: "/d", wantErr: "must be 1 to 15 characters"},
		{name: "negative mtu", cidr: "10.244.1.0/24", bridge: "skiff0", mtu: -1, dataDir: "/d", wantErr: "must be >= 0"},
		{name: "no ipam dir", cidr: "10.244.1.0/24", bridge: "skiff0", wantErr: "/var/lib/cni"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RenderConfList(tt.cidr, tt.bridge, tt.mtu, tt.dataDir)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("RenderConfList(%q, %q, %d, %q) error = %v, want one containing %q", tt.cidr, tt.bridge, tt.mtu, tt.dataDir, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("RenderConfList: %v", err)
			}
			if !strings.Contains(string(got), tt.want) {
				t.Fatalf("RenderConfList(%q, %q, %d, %q) =\n%s\nwant it to contain\n%s", tt.cidr, tt.bridge, tt.mtu, tt.dataDir, got, tt.want)
			}
		})
	}
}

func TestRenderedPodCIDR(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{name: "rendered", body: mustRender(t, "10.244.3.0/24"), want: "10.244.3.0/24"},
		{name: "not JSON", body: "{", want: ""},
		{name: "no ipam", body: `{"plugins": [{"type": "portmap"}]}`, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := renderedPodCIDR([]byte(tt.body)); got != tt.want {
				t.Errorf("renderedPodCIDR = %q, want %q", got, tt.want)
			}
		})
	}
}

func mustRender(t *testing.T, cidr string) string {
	t.Helper()
	b, err := RenderConfList(cidr, "skiff0", 0, "/d")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPortMappings(t *testing.T) {
	tests := []struct {
		name  string
		ports []PortMapping
		want  []portMapping
	}{
		{name: "none", ports: nil, want: nil},
		{name: "a container port without hostPort publishes nothing", ports: []PortMapping{{ContainerPort: 80, Protocol: "TCP"}}, want: nil},
		{
			name:  "protocols in lower case, TCP by default",
			ports: []PortMapping{{HostPort: 8080, ContainerPort: 80}, {HostPort: 53, ContainerPort: 5353, Protocol: "UDP", HostIP: "127.0.0.1"}},
			want:  []portMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}, {HostPort: 53, ContainerPort: 5353, Protocol: "udp", HostIP: "127.0.0.1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := portMappings(tt.ports)
			if len(got) != len(tt.want) {
				t.Fatalf("portMappings = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("portMappings[%d] = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}
