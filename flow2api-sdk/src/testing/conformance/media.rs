//! The [`MediaStore`](crate::MediaStore) suite (filled in with the streaming media API).
