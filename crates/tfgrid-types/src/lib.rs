//! Grid-wide types shared by the ledger, the node agent, the explorer and the CLI.
