//! GET /static/… — the files of static/, embedded in the binary, served with ETags.

use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "static/"]
pub struct Static;

/// GET /static/{path} — embedded files with a strong ETag; revalidated daily.
pub async fn serve(
    req: actix_web::HttpRequest,
    path: actix_web::web::Path<String>,
) -> actix_web::HttpResponse {
    use actix_web::HttpResponse;
    use actix_web::http::header;
    let Some(file) = Static::get(&path) else {
        return HttpResponse::NotFound()
            .content_type("text/plain")
            .body("not found");
    };
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mime = mime_guess::from_path(path.as_str()).first_or_octet_stream();
    let mut resp = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    resp.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"));
    if matches {
        return resp.finish();
    }
    resp.insert_header((header::CONTENT_TYPE, mime.as_ref()))
        .body(file.data.into_owned())
}
