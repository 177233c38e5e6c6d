package disk

import "flag"

var update = flag.Bool("update", false, "write testdata/snapshot-v1.bin anew")
