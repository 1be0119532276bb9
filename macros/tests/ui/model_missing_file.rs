// `model!` on a file that does not exist. (A relative path is read from the
// calling crate's folder, which is the trybuild crate's here: an absolute path
// keeps the message the same wherever the target folder is.)

mod model {
    snnc_macros::model!("/nonexistent/snnc/no_such_model.snn");
}

fn main() {}
