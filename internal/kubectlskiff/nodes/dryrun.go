package nodes

import (
	"fmt"

	"github.com/spf13/pflag"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// dryRun is kubectl's --dry-run strategy: none changes the cluster; client
// sends nothing that writes, and only says what would be done; server sends
// every write with dryRun=All, so that the apiserver checks it (admission,
// RBAC, preconditions) without persisting it.
type dryRun string

const (
	dryRunNone   dryRun = "none"
	dryRunClient dryRun = "client"
	dryRunServer dryRun = "server"
)

// dryRunBare is what a bare --dry-run reads as: kubectl takes it for
// client, as it did when the flag was a boolean.
const dryRunBare = "unchanged"

// addDryRunFlag adds --dry-run to a command's flags.
func addDryRunFlag(fs *pflag.FlagSet, p *dryRun) {
	*p = dryRunNone
	fs.Var(p, "dry-run", `Must be "none", "server", or "client". If client strategy, only print what would be done, without sending it. `+
		`If server strategy, send the node's patch and the pods' deletions with dryRun=All: the apiserver checks them without persisting them. `+
		`skiff's kinds are custom resources, which have no eviction API, so a server dry run checks deletions, not evictions.`)
	fs.Lookup("dry-run").NoOptDefVal = dryRunBare
}

// Set reads --dry-run as kubectl does.
func (d *dryRun) Set(s string) error {
	switch s {
	case string(dryRunNone), "false":
		*d = dryRunNone
	case string(dryRunClient), dryRunBare, "true":
		*d = dryRunClient
	case string(dryRunServer):
		*d = dryRunServer
	default:
		return fmt.Errorf(`invalid dry-run value (%s): must be "none", "server", or "client"`, s)
	}
	return nil
}

func (d *dryRun) String() string { return string(*d) }

// Type is how --help names the flag's value.
func (d *dryRun) Type() string { return "string" }

// writes tells whether requests that change objects are sent at all.
func (d dryRun) writes() bool { return d != dryRunClient }

// waits tells whether drain waits for the pods it deleted: only when they
// were really deleted.
func (d dryRun) waits() bool { return d == dryRunNone }

// patchOpts and deleteOpts are the options a write is sent with.
func (d dryRun) patchOpts() []client.PatchOption {
	if d == dryRunServer {
		return []client.PatchOption{client.DryRunAll}
	}
	return nil
}

func (d dryRun) deleteOpts(opts ...client.DeleteOption) []client.DeleteOption {
	if d == dryRunServer {
		return append(opts, client.DryRunAll)
	}
	return opts
}

// done is what a report of an operation says, kubectl's marks of a dry
// run included ("cordoned (dry run)").
func (d dryRun) done(operation string) string {
	switch d {
	case dryRunClient:
		return operation + " (dry run)"
	case dryRunServer:
		return operation + " (server dry run)"
	}
	return operation
}
