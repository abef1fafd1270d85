return { name = "helper from the service's folder" }
