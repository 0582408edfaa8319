//go:build !race

package compat

var raceFlags []string
