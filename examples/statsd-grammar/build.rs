fn main() -> Result<(), Box<dyn std::error::Error>> {
    aa_dsl::compile(&["statsd.aag"])
}
