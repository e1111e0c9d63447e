package testenv

import (
	"fmt"
	"io"
	"net/http"
	"strings"
)

// MissingSeries scrapes the Prometheus text at url (a /metrics endpoint)
// and returns those of series that start no line of it: a metric name, or
// a name and the start of its labels, e.g. `x_total{result="ok"`.
func MissingSeries(url string, series ...string) ([]string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return series, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return series, err
	}
	if resp.StatusCode != http.StatusOK {
		return series, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var missing []string
	for _, s := range series {
		if !strings.Contains("\n"+string(body), "\n"+s) {
			missing = append(missing, s)
		}
	}
	return missing, nil
}
