//go:build !unix

package source

import "os"

// readable checks that this process may read the file at p.
func readable(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	return f.Close()
}

const noFollow = 0
