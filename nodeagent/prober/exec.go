package prober

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// probeExec runs the command in the container: exit code 0 is success, any
// other a failure whose message is the command's output; running out of
// time is a failure too, as with the kubelet's ExecProbeTimeout.
func probeExec(ctx context.Context, cmd []string, target Target, timeout time.Duration) (Result, string) {
	if len(cmd) == 0 {
		return Unknown, "exec probe has no command"
	}
	if target.Execer == nil {
		return Unknown, "exec probe: the runtime gave no Execer for container " + target.ContainerID
	}
	code, out, err := target.Execer.ExecProbe(ctx, target.ContainerID, cmd, timeout)
	if len(out) > maxOutput {
		out = out[:maxOutput]
	}
	shown := strings.Join(cmd, " ")
	switch {
	case err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded)):
		return Failure, fmt.Sprintf("command '%s' timed out after %s", shown, timeout)
	case err != nil:
		return Unknown, fmt.Sprintf("exec probe in container %s: %v", target.ContainerID, err)
	case code != 0 && len(out) == 0:
		return Failure, fmt.Sprintf("command '%s' exited with %d", shown, code)
	case code != 0:
		return Failure, string(out)
	}
	return Success, string(out)
}
