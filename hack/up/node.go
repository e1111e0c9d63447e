package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/namespaces"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/ebpf/lb"
	"skiff.dev/skiff/ebpf/nodeport"
	skiffcontainerd "skiff.dev/skiff/nodeagent/containerd"
	"skiff.dev/skiff/nodeagent/images"
)

// systemContainerd is where a containerd that the system runs listens.
const systemContainerd = "/run/containerd/containerd.sock"

// chooseRuntime picks the node agent's runtime when none was asked for:
// real containers when this is root and containerd is installed, since
// containers need both; simulated ones otherwise, saying why.
func (u *up) chooseRuntime() {
	if u.runtime != "" {
		return
	}
	u.runtime = "containerd"
	_, err := exec.LookPath("containerd")
	switch {
	case os.Geteuid() != 0:
		u.runtime = "simulated"
		fmt.Println("skiff: not root: pods run in the simulated runtime (run `make up` as root for real containers)")
	case err != nil:
		u.runtime = "simulated"
		fmt.Println("skiff: containerd is not installed: pods run in the simulated runtime (`make node-prereqs` installs it)")
	}
}

// startContainerd uses the system's containerd when one answers, and
// otherwise starts a private one under the state directory. Its shims, and
// so the pods' containers, outlive it: the next `make up` adopts them.
func (u *up) startContainerd() (*child, error) {
	if u.containerd != "" {
		return nil, skiffcontainerd.WaitForDaemon(u.ctx, u.containerd, 5*time.Second, func() error { return nil })
	}
	if err := skiffcontainerd.WaitForDaemon(u.ctx, systemContainerd, 0, func() error { return nil }); err == nil {
		u.containerd = systemContainerd
		fmt.Printf("skiff: using the system's containerd at %s\n", systemContainerd)
		return nil, nil
	}
	config, address, err := skiffcontainerd.WriteDaemonConfig(u.path("containerd"))
	if err != nil {
		return nil, err
	}
	c, err := start("containerd", u.logDir(), "containerd", "--config", config)
	if err != nil {
		return nil, err
	}
	u.containerd = address
	return c, skiffcontainerd.WaitForDaemon(u.ctx, address, u.startTimeout, func() error {
		if c.exited() {
			return c.failure()
		}
		return nil
	})
}

// loadImages imports skiff's test images (`make images`) into each node's
// containerd namespace: nothing can be pulled here, and the samples use them.
func (u *up) loadImages() error {
	client, err := containerd.New(u.containerd)
	if err != nil {
		return err
	}
	defer client.Close()
	for _, n := range u.nodes() {
		ctx := namespaces.WithNamespace(u.ctx, n.ctrNamespace)
		names, err := images.ImportDir(ctx, client, u.bin("images"))
		if err != nil {
			return fmt.Errorf("%w (build them with `make images`)", err)
		}
		fmt.Printf("skiff: images %v are on node %s\n", names, n.name)
	}
	return nil
}

// stopPods stops every container in a node's containerd namespace: SIGTERM,
// then SIGKILL after 10 s, and deletes their tasks (which unmounts their
// root filesystems). The containers stay, so that the next node agent
// finds the pods it ran and restarts them as their pods say.
func (u *up) stopPods(namespace string) error {
	client, err := containerd.New(u.containerd)
	if err != nil {
		return err
	}
	defer client.Close()
	ctx := namespaces.WithNamespace(context.Background(), namespace)
	tasks, err := client.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, t := range tasks.Tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stopTask(ctx, client, t.ID)
		}()
	}
	wg.Wait()
	return nil
}

// stopTask stops one container's task, giving it 10 s after SIGTERM.
func stopTask(ctx context.Context, client *containerd.Client, id string) {
	c, err := client.LoadContainer(ctx, id)
	if err != nil {
		return
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return
	}
	exited, err := task.Wait(ctx)
	if err != nil {
		return
	}
	_ = task.Kill(ctx, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll)
		<-exited
	}
	_, _ = task.Delete(ctx)
}

// killOrphanShims kills the containerd shims of a node's namespace that
// outlived their tasks, as a reboot would: a task delete that was cut short
// (the node agent killed in the middle of it) can leave containerd without
// the task but with its shim running, which nothing else would ever find.
// Run it once the node's tasks are stopped and deleted.
func (u *up) killOrphanShims(namespace string) error {
	pids, err := shimsOf(u.containerd, namespace)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return err
}

// shimsOf lists the shims that serve namespace for the containerd at
// address, from their command lines in /proc.
func shimsOf(address, namespace string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if isShimOf(args, address, namespace) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// isShimOf reports whether a command line is a runc shim of namespace at
// the containerd listening on address.
func isShimOf(args []string, address, namespace string) bool {
	if len(args) == 0 || !strings.HasPrefix(filepath.Base(args[0]), "containerd-shim") {
		return false
	}
	return flagIs(args, "-namespace", namespace) && flagIs(args, "-address", address)
}

// flagIs reports whether args hold "name value".
func flagIs(args []string, name, value string) bool {
	i := slices.Index(args, name)
	return i >= 0 && i+1 < len(args) && args[i+1] == value
}

// nodePortTable is the nftables table of this cluster's node ports, named
// after its bridge so that two clusters on one machine keep apart.
func (u *up) nodePortTable() string { return "skiff_nodeport_" + u.cniBridge }

// podnetTable is the nftables table of the pods' masquerade rule, named
// after the bridge for the same reason.
func (u *up) podnetTable() string { return "skiff_podnet_" + u.cniBridge }

// removeDatapath detaches the node's eBPF datapath and unmounts its bpffs,
// as the node shuts down: nothing of it is left attached to the machine.
// The one node's nftables tables are the host's and go too; a node of the
// node network has its tables in its netns, which goes with them.
func (u *up) removeDatapath(n node) error {
	var err error
	if n.index == 0 {
		// Both are inet tables; deleting one is the same for either.
		err = errors.Join(nodeport.Delete(u.nodePortTable()), nodeport.Delete(u.podnetTable()))
	}
	dir := n.bpfPinDir()
	if _, serr := os.Stat(dir); serr != nil {
		return err
	}
	err = errors.Join(err, lb.Unpin(dir))
	if uerr := unix.Unmount(dir, 0); uerr != nil && uerr != unix.EINVAL {
		err = errors.Join(err, uerr)
	}
	return err
}

// unmountUnder unmounts what a node agent mounted under its root (pods'
// network namespaces, memory-backed volumes), as a machine's shutdown
// does: the next node agent sets them up again, and the state directory
// can be removed.
func unmountUnder(root string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(root))
	if err != nil {
		return err
	}
	// Deepest first, so that nested mounts go before their parents.
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	var errs []error
	for _, m := range mounts {
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", m.Mountpoint, err))
		}
	}
	return errors.Join(errs...)
}
