package fs

import (
	"os"
	"syscall"
)

// startWriteback asks the kernel to start writing the range to the device
// without waiting for it (sync_file_range SYNC_FILE_RANGE_WRITE). It is a
// hint that makes the later fsync shorter, not a durability guarantee, so
// errors are ignored: fsync reports them.
func startWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.SyncFileRange(int(fd), off, n, 0x2 /* SYNC_FILE_RANGE_WRITE */)
	})
}
