-- The cluster file of the cluster-mode compose example: node name -> address.
db = "db:2528"
game = "game:2529"
