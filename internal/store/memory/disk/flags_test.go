package disk

import "flag"

var update = flag.Bool("update", false, "write testdata/snapshot-v3.bin (the current version) anew")
