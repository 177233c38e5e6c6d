package disk

import "flag"

var update = flag.Bool("update", false, "write testdata/snapshot-vN.bin of the current version N anew")
