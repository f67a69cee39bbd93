package duckdb

import "time"

var timeFar = time.Now().Add(time.Hour)
