// Package cronjob creates Jobs on a cron schedule.
package cronjob

import ctrl "sigs.k8s.io/controller-runtime"

// Setup registers the CronJob controller with the manager.
func Setup(mgr ctrl.Manager) error { return nil }
