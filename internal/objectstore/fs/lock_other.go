//go:build !unix

package fs

import "os"

// lockDir creates path exclusively; the returned function removes it. A
// crash leaves the file behind, to be removed by hand.
func lockDir(path string) (func() error, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	f.Close()
	return func() error { return os.Remove(path) }, nil
}
