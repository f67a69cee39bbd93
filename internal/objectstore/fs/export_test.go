package fs

import "log/slog"

// OpenNoSync opens a store that skips fsync: for tests of semantics, where
// durability is not under test, on a slow shared disk.
func OpenNoSync(dir string, logger *slog.Logger) (*Store, error) { return open(dir, logger, true) }

var CRC64NVMEOf = crc64nvmeOf
