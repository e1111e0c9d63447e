// Command memhog is skiff.dev/test/memhog: it takes memory in steps and
// touches every page, so that a container with a memory limit below -mb is
// OOM-killed, as tests of limits and of the OOMKilled reason need. Once it
// holds -mb it sleeps until it is killed.
package main

import (
	"flag"
	"log"
	"runtime"
	"time"
)

func main() {
	log.SetFlags(0)
	mb := flag.Int("mb", 200, "megabytes to take in all")
	step := flag.Int("step", 10, "megabytes to take at each step")
	interval := flag.Duration("interval", 50*time.Millisecond, "pause between steps")
	flag.Parse()
	if *mb <= 0 || *step <= 0 {
		log.Fatalf("memhog: -mb and -step must be > 0, got %d and %d", *mb, *step)
	}

	var held [][]byte
	for total := 0; total < *mb; {
		n := min(*step, *mb-total)
		held = append(held, touched(n<<20))
		total += n
		log.Printf("memhog: holding %d MiB", total)
		time.Sleep(*interval)
	}
	log.Printf("memhog: holding all %d MiB; sleeping", *mb)
	for {
		time.Sleep(time.Hour)
		runtime.KeepAlive(held) // or the collector could free it
	}
}

// touched allocates n bytes and writes one byte in every page, so that the
// kernel really charges them to the cgroup instead of mapping zero pages.
func touched(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 4096 {
		b[i] = 1
	}
	return b
}
