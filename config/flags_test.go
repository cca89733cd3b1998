package config

import "flag"

var update = flag.Bool("update", false, "rewrite README.md's generated config table")
