//! TODO(in progress)
use crate::ui::PageError;
pub async fn get() -> Result<actix_web::HttpResponse, PageError> {
    Err(PageError::NotFound)
}
pub async fn post() -> Result<actix_web::HttpResponse, PageError> {
    Err(PageError::NotFound)
}
