package main

import "fmt"

// count writes n and the word, in the singular for one: "1 file", "3 files".
func count(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
