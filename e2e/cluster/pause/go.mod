module swg-operator.local/pause

go 1.24
