package sockets

import "slices"

// The never-public table, for the tests that hold it to the registries.

// Block is one entry of the never-public table.
type Block = block

// TableSource says where the never-public table comes from.
const TableSource = tableSource

// NeverPublic returns a copy of the never-public table.
func NeverPublic() []Block { return slices.Clone(neverPublic) }

// TimeoutError is the error of a connect attempt its deadline cut off.
type TimeoutError = timeoutError
