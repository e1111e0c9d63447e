package replicaset

import "sync"

// burstReplicas caps the pods one sync creates or deletes, as upstream's
// BurstReplicas: a ReplicaSet scaled to thousands converges over several
// syncs instead of flooding the apiserver in one.
const burstReplicas = 500

// batchSizes splits count calls into batches that double from initial:
// 1, 2, 4, 8... with the last batch taking what is left.
func batchSizes(count, initial int) []int {
	var sizes []int
	for size := max(initial, 1); count > 0; size *= 2 {
		n := min(size, count)
		sizes = append(sizes, n)
		count -= n
	}
	return sizes
}

// slowStartBatch calls fn count times, the calls of one batch in parallel,
// batches growing as batchSizes, and stops after the first batch in which a
// call fails. It returns how many calls succeeded and the first error.
// Upstream does the same: when every creation is refused (a quota, an
// admission policy) one failed call costs little, but when they succeed
// the ReplicaSet quickly reaches full speed.
func slowStartBatch(count, initial int, fn func() error) (int, error) {
	successes := 0
	for _, size := range batchSizes(count, initial) {
		errs := make(chan error, size)
		var wg sync.WaitGroup
		for range size {
			wg.Go(func() {
				if err := fn(); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		successes += size - len(errs)
		if err, failed := <-errs; failed {
			return successes, err
		}
	}
	return successes, nil
}
