//! The Nitro Secure Module device (`/dev/nsm`) through `aws-nitro-enclaves-nsm-api`'s driver.
//! Thin on purpose: it cannot run outside a Nitro enclave, so every request is one driver call
//! and every unexpected answer is an error.

use aws_nitro_enclaves_nsm_api::api::{Request, Response};
use aws_nitro_enclaves_nsm_api::driver;
use serde_bytes::ByteBuf;

use super::{MAX_FIELD_BYTES, Nsm, NsmError};

/// The opened device.
pub(crate) struct DeviceNsm {
    fd: i32,
    module_id: String,
}

impl DeviceNsm {
    /// Opens `/dev/nsm` and reads the module id.
    pub(crate) fn open() -> Result<Self, NsmError> {
        let fd = driver::nsm_init();
        if fd < 0 {
            return Err(NsmError::Unavailable("/dev/nsm cannot be opened".into()));
        }
        let nsm = Self {
            fd,
            module_id: String::new(),
        };
        match nsm.request(Request::DescribeNSM)? {
            Response::DescribeNSM { module_id, .. } => Ok(Self { module_id, ..nsm }),
            other => Err(unexpected(&other)),
        }
    }

    fn request(&self, request: Request) -> Result<Response, NsmError> {
        match driver::nsm_process_request(self.fd, request) {
            Response::Error(code) => Err(NsmError::Device(format!("{code:?}"))),
            response => Ok(response),
        }
    }
}

impl Drop for DeviceNsm {
    fn drop(&mut self) {
        driver::nsm_exit(self.fd);
    }
}

fn unexpected(response: &Response) -> NsmError {
    // The variant name only: a document or random bytes never reach a log.
    let text = format!("{response:?}");
    let variant = text.split([' ', '(', '{']).next().unwrap_or("?");
    NsmError::Device(format!("unexpected answer {variant}"))
}

fn optional(bytes: &[u8]) -> Result<Option<ByteBuf>, NsmError> {
    if bytes.len() > MAX_FIELD_BYTES {
        return Err(NsmError::InvalidInput(format!(
            "a field of {} bytes is longer than {MAX_FIELD_BYTES}",
            bytes.len()
        )));
    }
    Ok((!bytes.is_empty()).then(|| ByteBuf::from(bytes.to_vec())))
}

impl Nsm for DeviceNsm {
    fn attest(
        &self,
        user_data: &[u8],
        nonce: &[u8],
        public_key: &[u8],
    ) -> Result<Vec<u8>, NsmError> {
        let request = Request::Attestation {
            user_data: optional(user_data)?,
            nonce: optional(nonce)?,
            public_key: optional(public_key)?,
        };
        match self.request(request)? {
            Response::Attestation { document } => Ok(document),
            other => Err(unexpected(&other)),
        }
    }

    fn random(&self, out: &mut [u8]) -> Result<(), NsmError> {
        let mut filled = 0;
        // Each answer carries some bytes (256 on current hardware); bounded by the output size.
        for _ in 0..=out.len() {
            if filled >= out.len() {
                return Ok(());
            }
            match self.request(Request::GetRandom)? {
                Response::GetRandom { random } => {
                    let take = random.len().min(out.len() - filled);
                    if let (Some(dst), Some(src)) =
                        (out.get_mut(filled..filled + take), random.get(..take))
                    {
                        dst.copy_from_slice(src);
                    }
                    filled += take;
                }
                other => return Err(unexpected(&other)),
            }
        }
        if filled >= out.len() {
            Ok(())
        } else {
            Err(NsmError::Device("GetRandom returned no bytes".into()))
        }
    }

    fn describe_pcr(&self, index: u16) -> Result<Vec<u8>, NsmError> {
        match self.request(Request::DescribePCR { index })? {
            Response::DescribePCR { data, .. } => Ok(data),
            other => Err(unexpected(&other)),
        }
    }

    fn is_simulated(&self) -> bool {
        false
    }

    fn module_id(&self) -> String {
        self.module_id.clone()
    }
}
