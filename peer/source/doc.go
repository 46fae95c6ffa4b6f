// Package source is the sending side's access to local files: the
// manifest of what is offered, and reads of byte ranges that notice a
// file changing underneath.
package source
