package main

import (
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"lukechampine.com/blake3"
)

// dataset is what one scenario sends: a file or a tree, generated once
// from the seed, with the hash of every file to check the received copy.
type dataset struct {
	path   string              // the file or directory given to dshare send
	hashes map[string][32]byte // slash path below filepath.Dir(path) → BLAKE3
	bytes  int64
	files  int
}

// rng returns a deterministic byte stream for seed and one use of it.
func rng(seed, stream uint64) io.Reader {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
		key[8+i] = byte(stream >> (8 * i))
	}
	return rand.NewChaCha8(key)
}

// writeFile writes n bytes of r to path and returns their hash.
func writeFile(path string, r io.Reader, n int64) ([32]byte, error) {
	f, err := os.Create(path)
	if err != nil {
		return [32]byte{}, err
	}
	h := blake3.New(32, nil)
	_, err = io.CopyN(io.MultiWriter(f, h), r, n)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, err
}

// makeFile creates one file of size random bytes in dir.
func makeFile(dir, name string, size int64, seed, stream uint64) (*dataset, error) {
	path := filepath.Join(dir, name)
	sum, err := writeFile(path, rng(seed, stream), size)
	if err != nil {
		return nil, fmt.Errorf("cannot write the test file: %w", err)
	}
	return &dataset{path: path, hashes: map[string][32]byte{name: sum}, bytes: size, files: 1}, nil
}

// filesPerDir keeps directories small, as real trees are.
const filesPerDir = 100

// makeTree creates count files of size random bytes, filesPerDir to a
// directory, below dir/name.
func makeTree(dir, name string, count int, size int64, seed, stream uint64) (*dataset, error) {
	d := &dataset{path: filepath.Join(dir, name), hashes: map[string][32]byte{}, bytes: int64(count) * size, files: count}
	r := rng(seed, stream)
	for i := range count {
		rel := fmt.Sprintf("%s/d%03d/f%04d.bin", name, i/filesPerDir, i)
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if i%filesPerDir == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, fmt.Errorf("cannot create the test tree: %w", err)
			}
		}
		sum, err := writeFile(p, r, size)
		if err != nil {
			return nil, fmt.Errorf("cannot write the test tree: %w", err)
		}
		d.hashes[rel] = sum
	}
	return d, nil
}

func hashFile(path string) ([32]byte, error) {
	var sum [32]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := blake3.New(32, nil)
	if _, err := io.Copy(h, f); err != nil {
		return sum, err
	}
	h.Sum(sum[:0])
	return sum, nil
}

// verify checks that out holds exactly the dataset's files with their
// content, so that every number the bench prints is of a real transfer.
func (d *dataset) verify(out string) error {
	seen := 0
	err := filepath.WalkDir(out, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if e.Name() == ".dshare" {
				return filepath.SkipDir // the receiver's staging area, if left
			}
			return nil
		}
		rel, _ := filepath.Rel(out, p)
		rel = filepath.ToSlash(rel)
		want, ok := d.hashes[rel]
		if !ok {
			return fmt.Errorf("the receiver wrote %s, which was not sent", rel)
		}
		got, err := hashFile(p)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("the received %s differs from the one sent", rel)
		}
		seen++
		return nil
	})
	if err != nil {
		return err
	}
	if seen != len(d.hashes) {
		return fmt.Errorf("the receiver holds %d of the %d files sent", seen, len(d.hashes))
	}
	return nil
}

// parseSize reads a byte count: 1073741824, 512M, 1G or 1GiB (binary),
// 500MB (decimal).
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1},
	}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("%q is not a size such as 1073741824, 512M or 1GiB", s)
	}
	return n * mult, nil
}

// sizeFlag is a flag.Value for byte counts.
type sizeFlag struct{ n *int64 }

func (f sizeFlag) String() string {
	if f.n == nil {
		return ""
	}
	return humanBytes(*f.n)
}

func (f sizeFlag) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*f.n = n
	return nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
