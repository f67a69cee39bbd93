package fs

import "log/slog"

// OpenNoSync opens a store that skips fsync, for fuzzing, where each
// input's writes must be cheap and durability is not under test.
func OpenNoSync(dir string, logger *slog.Logger) (*Store, error) { return open(dir, logger, true) }

var CRC64NVMEOf = crc64nvmeOf
