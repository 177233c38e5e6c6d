package disk

import "flag"

var update = flag.Bool("update", false, "write testdata/snapshot-v2.bin (the current version) anew")
