fn main() {
    std::process::exit(skynet_node::cli::main());
}
