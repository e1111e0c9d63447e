package uptest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Test ports come from below the kernel's ephemeral range (32768 and up by
// default): a port picked there can be taken by no outgoing connection in
// the seconds between the pick and the server's listen, which is how a
// port picked with :0 was lost under a loaded `make test`.
const (
	portsFrom = 20000
	portsTo   = 29000 // exclusive; the e2e suites' fixed agent ports lie above
)

// portLocks holds the lock files of the ports this process reserved, open
// for its whole life: another test process never picks them.
var portLocks []*os.File

// FreePorts finds n free ports on 127.0.0.1; each is followed by a free
// one too, since up uses port+1 for etcd's peers and the manager's health
// endpoint. A pair is reserved for this process by a lock file, so that
// test processes running side by side never pick the same one.
func FreePorts(n int) ([]int, error) {
	dir := filepath.Join(os.TempDir(), "skiff-test-ports")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var ports []int
	pairs := (portsTo - portsFrom) / 2
	start := rand.IntN(pairs)
	for i := 0; i < pairs && len(ports) < n; i++ {
		port := portsFrom + 2*((start+i)%pairs)
		if lock, ok := reserve(dir, port); ok {
			portLocks = append(portLocks, lock)
			ports = append(ports, port)
		}
	}
	if len(ports) < n {
		return nil, fmt.Errorf("only %d free port pairs between %d and %d, want %d", len(ports), portsFrom, portsTo, n)
	}
	return ports, nil
}

// reserve takes port's lock file and checks that port and port+1 are free.
func reserve(dir string, port int) (*os.File, bool) {
	lock, err := os.OpenFile(filepath.Join(dir, fmt.Sprint(port)), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, false
	}
	if !free(port) || !free(port+1) {
		lock.Close() // closing releases the lock
		return nil, false
	}
	return lock, true
}

// free reports whether port can be listened on, on 127.0.0.1 and on every
// address (a server on 0.0.0.0 holds it for 127.0.0.1 too).
func free(port int) bool {
	for _, host := range []string{"127.0.0.1", "0.0.0.0"} {
		l, err := net.Listen("tcp", net.JoinHostPort(host, fmt.Sprint(port)))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}
