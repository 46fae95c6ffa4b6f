package peer

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
)

const identityFile = "identity.key"

// ErrIdentity means the identity file exists but cannot be used.
var ErrIdentity = errors.New("bad identity file")

// LoadIdentity returns the Ed25519 key stored in home, creating it (and
// home, mode 0700) on first use. The key file has mode 0600, so the peer ID
// stays the same across runs.
func LoadIdentity(home string) (crypto.PrivKey, error) {
	path := filepath.Join(home, identityFile)
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := crypto.UnmarshalPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("%w %s: %w", ErrIdentity, path, err)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	b, err = crypto.MarshalPrivateKey(key)
	if err != nil {
		return nil, err
	}
	// Write to a temporary name and link it into place, so that two
	// processes starting at once agree on one key.
	tmp, err := os.CreateTemp(home, ".identity-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadIdentity(home)
		}
		return nil, err
	}
	return key, nil
}
